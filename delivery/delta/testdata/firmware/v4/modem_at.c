/* AT transport for the NB-IoT modem on USART2: receive ring, line framing, result codes and URCs. */
#include <stdlib.h>
#include <string.h>
#include "hw.h"
#include "modem.h"

#define RX_RING_SIZE  512u
#define LINE_MAX      128u

static const char TAG[] = "at";

nbiot_info_t g_nbiot;

static struct {
    uint32_t t_start;
    uint16_t timeout_ms;
    at_status_t status;
    at_line_fn on_line;
} s_cmd = { 0, 0, AT_OK, NULL };

static uint8_t s_ring_mem[RX_RING_SIZE];
static ringbuf_t s_ring;
static char s_line[LINE_MAX];
static uint16_t s_line_len;

typedef struct {
    const char *prefix;
    void (*handler)(const char *args);
} urc_entry_t;

static void urc_cereg(const char *a);
static void urc_csq(const char *a);
static void urc_nsonmi(const char *a);
static void urc_npsmr(const char *a);
static void urc_cscon(const char *a);
static void urc_nsocli(const char *a);
static void urc_cclk(const char *a);
static void urc_nuestats(const char *a);

static const urc_entry_t s_urcs[] = {
    { "+CEREG:", urc_cereg },
    { "+CSCON:", urc_cscon },
    { "+CSQ:", urc_csq },
    { "+NPSMR:", urc_npsmr },
    { "+NSONMI:", urc_nsonmi },
    { "+NSOCLI:", urc_nsocli },
    { "+CCLK:", urc_cclk },
    { "+NUESTATS:", urc_nuestats },
};

static void urc_cereg(const char *a)
{
    int32_t v;

    if (!parse_int(&a, &v))
        return;
    /* URC form is +CEREG: <stat>[,...]; the query answer is +CEREG: <n>,<stat>[,...] */
    if (*a >= '0' && *a <= '9' && !parse_int(&a, &v))
        return;
    g_nbiot.reg_stat = (uint8_t)v;
    if (*a == '"') {
        g_nbiot.tac = (uint16_t)strtoul(a + 1, NULL, 16);
        a = strchr(a + 1, ',');
        if (a && a[1] == '"')
            g_nbiot.cell_id = strtoul(a + 2, NULL, 16);
    }
    LOGI(TAG, "cereg %u tac %04x cell %08lx", g_nbiot.reg_stat, g_nbiot.tac,
         (unsigned long)g_nbiot.cell_id);
}

static void urc_cscon(const char *a)
{
    g_nbiot.rrc_connected = (a[1] == '1' || a[0] == '1');
}

static void urc_csq(const char *a)
{
    int32_t v;

    if (parse_int(&a, &v))
        g_nbiot.rssi = (v == 99) ? 0 : (int16_t)(-113 + 2 * v);
}

static void urc_npsmr(const char *a)
{
    g_nbiot.psm = (a[0] == '1' || a[1] == '1');
    LOGD(TAG, "power saving mode %s", g_nbiot.psm ? "on" : "off");
}

static void urc_nsonmi(const char *a)
{
    int32_t sock, len;

    if (parse_int(&a, &sock) && parse_int(&a, &len)) {
        g_nbiot.rx_datagrams++;
        LOGI(TAG, "datagram on socket %ld (%ld bytes)", (long)sock, (long)len);
    }
}

static void urc_nsocli(const char *a)
{
    (void)a;
    LOGW(TAG, "socket closed by network");
    g_nbiot.socket = -1;
}

/* +CCLK: "yy/MM/dd,hh:mm:ss+zz" */
static void urc_cclk(const char *a)
{
    const char *t = strchr(a, ',');
    int32_t hh, mm, ss;

    if (!t)
        return;
    t++;
    hh = strtol(t, (char **)&t, 10);
    if (*t++ != ':')
        return;
    mm = strtol(t, (char **)&t, 10);
    if (*t++ != ':')
        return;
    ss = strtol(t, NULL, 10);
    g_nbiot.net_time = (uint32_t)(hh * 3600 + mm * 60 + ss);
}

static void urc_nuestats(const char *a)
{
    static const char *const keys[] = { "\"RADIO\",", "\"CELL\",", "\"BLER\"," };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (str_starts(a, keys[i])) {
            LOGD(TAG, "ue stats %s", a);
            return;
        }
    }
}

void USART2_IRQHandler(void)
{
    if (USART2->SR & (USART_SR_RXNE | USART_SR_ORE))
        rb_put(&s_ring, (uint8_t)USART2->DR);
}

void at_port_open(uint32_t baud)
{
    RCC->APB1ENR |= (1u << 17);
    RCC->AHB1ENR |= (1u << 0);
    GPIOA->MODER = (GPIOA->MODER & ~0xF0u) | 0xA0u;     /* PA2/PA3 AF7 */
    GPIOA->AFR[0] = (GPIOA->AFR[0] & ~0xFF00u) | 0x7700u;
    USART2->BRR = APB1_HZ / baud;
    USART2->CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
    NVIC_ISER[38 / 32] = 1u << (38 % 32);
    rb_init(&s_ring, s_ring_mem, sizeof s_ring_mem);
    memset(&g_nbiot, 0, sizeof g_nbiot);
    g_nbiot.socket = -1;
}

void at_port_flush(void)
{
    rb_flush(&s_ring);
    s_line_len = 0;
}

static void port_write(const char *s)
{
    for (; *s; s++) {
        while (!(USART2->SR & USART_SR_TXE))
            ;
        USART2->DR = (uint8_t)*s;
    }
}

void at_cmd_start(const char *cmd, uint16_t timeout_ms, at_line_fn on_line)
{
    LOGD(TAG, "-> %s", cmd);
    port_write(cmd);
    port_write("\r\n");
    s_cmd.t_start = millis();
    s_cmd.timeout_ms = timeout_ms;
    s_cmd.on_line = on_line;
    s_cmd.status = AT_PENDING;
}

at_status_t at_cmd_status(void)
{
    if (s_cmd.status == AT_PENDING && (uint32_t)(millis() - s_cmd.t_start) > s_cmd.timeout_ms) {
        LOGW(TAG, "timeout after %u ms", s_cmd.timeout_ms);
        s_cmd.status = AT_TIMEOUT;
    }
    return s_cmd.status;
}

bool at_cmd_idle(void)
{
    return at_cmd_status() != AT_PENDING;
}

static void dispatch_line(const char *line)
{
    LOGD(TAG, "<- %s", line);
    if (line[0] == 'O' && line[1] == 'K' && line[2] == '\0') {
        s_cmd.status = AT_OK;
    } else if (strcmp(line, "ERROR") == 0) {
        g_nbiot.cme_error = -1;
        s_cmd.status = AT_ERROR;
    } else if (str_starts(line, "+CME ERROR:")) {
        g_nbiot.cme_error = atoi(line + 11);
        s_cmd.status = AT_ERROR;
    } else {
        for (size_t i = 0; i < sizeof s_urcs / sizeof s_urcs[0]; i++) {
            size_t n = strlen(s_urcs[i].prefix);
            if (strncmp(line, s_urcs[i].prefix, n) == 0) {
                s_urcs[i].handler(line + n);
                return;
            }
        }
        if (s_cmd.on_line)
            s_cmd.on_line(line);
    }
}

void at_port_service(void)
{
    int c;

    while ((c = rb_get(&s_ring)) >= 0) {
        if (c != '\r' && c != '\n') {
            if (s_line_len < LINE_MAX - 1)
                s_line[s_line_len++] = (char)c;
            continue;
        }
        if (s_line_len == 0)
            continue;
        s_line[s_line_len] = '\0';
        s_line_len = 0;
        dispatch_line(s_line);
    }
}

int16_t nbiot_rssi(void)
{
    return g_nbiot.rssi;
}

uint32_t nbiot_cell_id(void)
{
    return g_nbiot.cell_id;
}
