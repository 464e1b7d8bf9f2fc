/* NB-IoT connection manager: table-driven state machine on top of the AT transport. */
#include <stdio.h>
#include <string.h>
#include "hw.h"
#include "modem.h"

#define APN                "iot.fotahub.example"
#define SERVER_ADDR        "192.0.2.10"
#define SERVER_PORT        5683
#define LOCAL_PORT         56830
#define MODEM_BAUD         9600u
#define PWRKEY_PIN         4u
#define SYNC_ATTEMPTS      10u
#define ATTACH_POLL_MS     2000u
#define MAX_TX_FAILURES    3u
#define RECOVER_MIN_S      15u
#define RECOVER_MAX_S      900u
#define PSM_IDLE_MS        20000u
#define MAX_PAYLOAD        256u
#define STR_(x)            #x
#define STR(x)             STR_(x)

static const char TAG[] = "nbiot";

typedef enum {
    ST_POWER_OFF, ST_PWRKEY, ST_BOOT, ST_SYNC, ST_BRINGUP, ST_ATTACH,
    ST_OPEN_SOCKET, ST_IDLE, ST_TRANSMIT, ST_SLEEP, ST_RECOVER, ST_COUNT
} nbiot_state_t;

typedef struct {
    const char *name;
    void (*enter)(void);
    void (*step)(uint32_t elapsed);
    uint32_t timeout_ms;         /* 0: no state timeout */
    nbiot_state_t on_timeout;
} state_desc_t;

typedef struct {
    const char *cmd;
    uint16_t timeout_ms;
    uint8_t attempts;
    at_line_fn on_line;
} bringup_step_t;

static struct {
    nbiot_state_t cur;
    uint32_t entered;
    uint32_t last_poll;
    uint8_t step, attempts, tx_failures;
    uint16_t recover_s;
    bool tx_queued;
    uint32_t tx_ok, tx_fail;
    char cmd[600];
} fsm;

static void goto_state(nbiot_state_t next);

static void capture_fw(const char *line)
{
    strncpy(g_nbiot.fw, line, sizeof g_nbiot.fw - 1);
}

static void capture_imei(const char *line)
{
    if (str_starts(line, "+CGSN:"))
        line += 6;
    while (*line == ' ')
        line++;
    strncpy(g_nbiot.imei, line, sizeof g_nbiot.imei - 1);
}

static void capture_socket(const char *line)
{
    if (line[0] >= '0' && line[0] <= '9')
        g_nbiot.socket = (int8_t)(line[0] - '0');
}

static const bringup_step_t s_bringup[] = {
    { "ATE0", 500, 3, NULL },
    { "AT+CMEE=1", 500, 3, NULL },
    { "AT+CGMR", 500, 2, capture_fw },
    { "AT+CGSN=1", 500, 2, capture_imei },
    { "AT+NCONFIG=\"AUTOCONNECT\",\"FALSE\"", 1000, 2, NULL },
    { "AT+NBAND=8,20", 1000, 2, NULL },
    { "AT+CFUN=1", 15000, 2, NULL },
    { "AT+CGDCONT=1,\"IP\",\"" APN "\"", 1000, 2, NULL },
    { "AT+CEREG=2", 500, 3, NULL },
    { "AT+CSCON=1", 500, 2, NULL },
    { "AT+CPSMS=1,,,\"01000011\",\"00000001\"", 1000, 2, NULL },
    { "AT+NPSMR=1", 500, 2, NULL },
    { "AT+CTZR=1", 500, 2, NULL },
    { "AT+COPS=0", 30000, 1, NULL },
};
#define BRINGUP_STEPS (sizeof s_bringup / sizeof s_bringup[0])

static void enter_power_off(void)
{
    GPIOC->BSRR = 1u << (PWRKEY_PIN + 16);         /* PWRKEY asserted */
    g_nbiot.reg_stat = 0;
    g_nbiot.socket = -1;
}

static void step_power_off(uint32_t elapsed)
{
    (void)elapsed;
    goto_state(ST_PWRKEY);
}

static void step_pwrkey(uint32_t elapsed)
{
    if (elapsed >= 500u) {
        GPIOC->BSRR = 1u << PWRKEY_PIN;
        goto_state(ST_BOOT);
    }
}

static void step_boot(uint32_t elapsed)
{
    if (elapsed >= 2000u) {
        at_port_flush();
        goto_state(ST_SYNC);
    }
}

static void enter_sync(void)
{
    at_cmd_start("AT", 500, NULL);
}

static void step_sync(uint32_t elapsed)
{
    (void)elapsed;
    switch (at_cmd_status()) {
    case AT_PENDING:
        break;
    case AT_OK:
        goto_state(ST_BRINGUP);
        break;
    default:
        if (++fsm.attempts >= SYNC_ATTEMPTS)
            goto_state(ST_RECOVER);
        else
            at_cmd_start("AT", 500, NULL);
        break;
    }
}

static void bringup_issue(void)
{
    const bringup_step_t *s = &s_bringup[fsm.step];
    at_cmd_start(s->cmd, s->timeout_ms, s->on_line);
}

static void enter_bringup(void)
{
    fsm.step = 0;
    bringup_issue();
}

static void step_bringup(uint32_t elapsed)
{
    at_status_t st = at_cmd_status();

    (void)elapsed;
    if (st == AT_PENDING)
        return;
    if (st == AT_OK) {
        fsm.attempts = 0;
        if (++fsm.step == BRINGUP_STEPS) {
            goto_state(ST_ATTACH);
            return;
        }
    } else if (++fsm.attempts > s_bringup[fsm.step].attempts) {
        LOGE(TAG, "bring-up step '%s' failed, cme error %d", s_bringup[fsm.step].cmd,
             g_nbiot.cme_error);
        goto_state(ST_RECOVER);
        return;
    }
    bringup_issue();
}

static void step_attach(uint32_t elapsed)
{
    static const char *const polls[] = { "AT+CEREG?", "AT+CSQ", "AT+CCLK?" };
    uint32_t now = millis();

    (void)elapsed;
    if (g_nbiot.reg_stat == 1 || g_nbiot.reg_stat == 5) {
        LOGI(TAG, "attached (%s) rssi %d dBm", g_nbiot.reg_stat == 5 ? "roaming" : "home",
             g_nbiot.rssi);
        fsm.recover_s = 0;
        goto_state(ST_OPEN_SOCKET);
    } else if (now - fsm.last_poll >= ATTACH_POLL_MS && at_cmd_idle()) {
        fsm.last_poll = now;
        at_cmd_start(polls[fsm.attempts++ % 3u], 1000, NULL);
    }
}

static void enter_open_socket(void)
{
    at_cmd_start("AT+NSOCR=DGRAM,17," STR(LOCAL_PORT) ",1", 2000, capture_socket);
}

static void step_open_socket(uint32_t elapsed)
{
    at_status_t st = at_cmd_status();

    (void)elapsed;
    if (st == AT_OK && g_nbiot.socket >= 0)
        goto_state(ST_IDLE);
    else if (st != AT_PENDING)
        goto_state(ST_RECOVER);
}

static void step_idle(uint32_t elapsed)
{
    if (g_nbiot.socket < 0) {
        goto_state(ST_ATTACH);
    } else if (fsm.tx_queued) {
        goto_state(ST_TRANSMIT);
    } else if (elapsed >= PSM_IDLE_MS && g_nbiot.psm) {
        goto_state(ST_SLEEP);
    }
}

static void enter_transmit(void)
{
    at_cmd_start(fsm.cmd, 5000, NULL);
}

static void step_transmit(uint32_t elapsed)
{
    at_status_t st = at_cmd_status();

    (void)elapsed;
    if (st == AT_PENDING)
        return;
    fsm.tx_queued = false;
    if (st == AT_OK) {
        fsm.tx_ok++;
        fsm.tx_failures = 0;
        goto_state(ST_IDLE);
    } else {
        fsm.tx_fail++;
        goto_state(++fsm.tx_failures >= MAX_TX_FAILURES ? ST_RECOVER : ST_IDLE);
    }
}

static void step_sleep(uint32_t elapsed)
{
    (void)elapsed;
    if (fsm.tx_queued || !g_nbiot.psm)
        goto_state(ST_IDLE);
}

static void enter_recover(void)
{
    fsm.recover_s = fsm.recover_s ? (uint16_t)(fsm.recover_s * 2u) : RECOVER_MIN_S;
    if (fsm.recover_s > RECOVER_MAX_S)
        fsm.recover_s = RECOVER_MAX_S;
    LOGE(TAG, "recovering, modem restart in %u s", fsm.recover_s);
}

static void step_recover(uint32_t elapsed)
{
    if (elapsed >= fsm.recover_s * 1000u)
        goto_state(ST_POWER_OFF);
}

static const state_desc_t s_states[ST_COUNT] = {
    [ST_POWER_OFF]   = { "power-off", enter_power_off, step_power_off, 0, ST_POWER_OFF },
    [ST_PWRKEY]      = { "pwrkey", NULL, step_pwrkey, 0, ST_POWER_OFF },
    [ST_BOOT]        = { "boot", NULL, step_boot, 0, ST_POWER_OFF },
    [ST_SYNC]        = { "sync", enter_sync, step_sync, 10000, ST_RECOVER },
    [ST_BRINGUP]     = { "bring-up", enter_bringup, step_bringup, 120000, ST_RECOVER },
    [ST_ATTACH]      = { "attach", NULL, step_attach, 180000, ST_RECOVER },
    [ST_OPEN_SOCKET] = { "open-socket", enter_open_socket, step_open_socket, 5000, ST_RECOVER },
    [ST_IDLE]        = { "idle", NULL, step_idle, 0, ST_IDLE },
    [ST_TRANSMIT]    = { "transmit", enter_transmit, step_transmit, 10000, ST_RECOVER },
    [ST_SLEEP]       = { "psm-sleep", NULL, step_sleep, 0, ST_SLEEP },
    [ST_RECOVER]     = { "recover", enter_recover, step_recover, 0, ST_POWER_OFF },
};

static void goto_state(nbiot_state_t next)
{
    LOGI(TAG, "[%s] => [%s]", s_states[fsm.cur].name, s_states[next].name);
    fsm.cur = next;
    fsm.entered = millis();
    fsm.attempts = 0;
    if (s_states[next].enter)
        s_states[next].enter();
}

void nbiot_start(void)
{
    RCC->AHB1ENR |= (1u << 2);
    GPIOC->MODER |= (1u << (PWRKEY_PIN * 2));
    at_port_open(MODEM_BAUD);
    memset(&fsm, 0, sizeof fsm);
    goto_state(ST_POWER_OFF);
}

void nbiot_process(void)
{
    const state_desc_t *d;
    uint32_t elapsed;

    at_port_service();
    d = &s_states[fsm.cur];
    elapsed = millis() - fsm.entered;
    if (d->timeout_ms && elapsed > d->timeout_ms) {
        LOGW(TAG, "state %s timed out", d->name);
        goto_state(d->on_timeout);
        return;
    }
    d->step(elapsed);
}

bool nbiot_can_send(void)
{
    return (fsm.cur == ST_IDLE || fsm.cur == ST_SLEEP) && !fsm.tx_queued;
}

int nbiot_transmit(const uint8_t *data, size_t len)
{
    static char hex[2 * MAX_PAYLOAD + 1];

    if (!nbiot_can_send() || len > MAX_PAYLOAD)
        return -1;
    hex_encode(hex, sizeof hex, data, len);
    snprintf(fsm.cmd, sizeof fsm.cmd, "AT+NSOST=%d,\"%s\",%u,%u,\"%s\"", g_nbiot.socket,
             SERVER_ADDR, SERVER_PORT, (unsigned)len, hex);
    fsm.tx_queued = true;
    return (int)len;
}

const char *nbiot_state(void)
{
    return s_states[fsm.cur].name;
}
