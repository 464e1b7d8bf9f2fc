/* Internal interface between the AT transport and the NB-IoT connection state machine. */
#ifndef MODEM_H
#define MODEM_H

#include "app.h"

typedef enum { AT_PENDING, AT_OK, AT_ERROR, AT_TIMEOUT } at_status_t;
typedef void (*at_line_fn)(const char *line);

typedef struct {
    uint8_t reg_stat;
    uint8_t rrc_connected;
    bool psm;
    int8_t socket;
    int16_t rssi;
    uint16_t tac;
    uint32_t cell_id;
    uint32_t rx_datagrams;
    uint32_t net_time;       /* seconds since midnight, from +CCLK */
    int cme_error;
    char imei[16];
    char fw[32];
} nbiot_info_t;

extern nbiot_info_t g_nbiot;

void at_port_open(uint32_t baud);
void at_port_flush(void);
void at_port_service(void);
void at_cmd_start(const char *cmd, uint16_t timeout_ms, at_line_fn on_line);
at_status_t at_cmd_status(void);
bool at_cmd_idle(void);

#endif
