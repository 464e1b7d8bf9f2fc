/* NB-IoT modem (BC66/SARA-N2-style AT interface) on USART2: command table and state machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "app.h"
#include "hw.h"

#define MODEM_APN          "iot.fotahub.example"
#define SERVER_IP          "192.0.2.10"
#define SERVER_PORT        5683
#define LOCAL_PORT         56830
#define RX_SIZE            512u
#define LINE_MAX           128u
#define SYNC_TRIES         10u
#define REG_POLL_MS        2000u
#define REG_TIMEOUT_MS     180000u
#define BACKOFF_MAX_S      600u
#define PWRKEY_PIN         4u
#define STR_(x)            #x
#define STR(x)             STR_(x)

static const char TAG[] = "modem";

typedef enum {
    MS_OFF, MS_POWER_ON, MS_SYNC, MS_CONFIG, MS_WAIT_REG,
    MS_SOCKET, MS_READY, MS_SEND, MS_BACKOFF, MS_COUNT
} modem_state_t;

static const char *const state_names[MS_COUNT] = {
    "off", "power-on", "sync", "config", "wait-reg",
    "socket", "ready", "send", "backoff",
};

typedef enum { RSP_NONE, RSP_OK, RSP_ERROR, RSP_TIMEOUT } rsp_t;

typedef struct {
    const char *cmd;
    uint16_t timeout_ms;
    uint8_t retries;
    void (*on_line)(const char *line);
} at_cmd_t;

typedef struct {
    const char *prefix;
    void (*handler)(const char *args);
} urc_t;

static struct {
    modem_state_t state;
    uint32_t t_state, t_cmd, t_poll;
    uint16_t cmd_timeout;
    void (*cmd_line)(const char *line);
    rsp_t rsp;
    uint8_t seq_idx, tries, send_errors;
    int8_t socket;
    uint8_t reg_stat;
    int16_t rssi;
    uint16_t tac;
    uint32_t cell_id;
    uint16_t backoff_s;
    uint32_t tx_count, rx_count;
    bool tx_pending, psm;
    int cme_error;
    char imei[16];
    char fw[32];
} m;

static uint8_t s_rx_mem[RX_SIZE];
static ringbuf_t s_rx;
static char s_line[LINE_MAX];
static uint16_t s_line_len;
static char s_txcmd[400];

static void on_cgmr(const char *line)
{
    strncpy(m.fw, line, sizeof m.fw - 1);
}

static void on_cgsn(const char *line)
{
    if (str_starts(line, "+CGSN:"))
        line += 6;
    while (*line == ' ')
        line++;
    strncpy(m.imei, line, sizeof m.imei - 1);
}

static void on_nsocr(const char *line)
{
    if (line[0] >= '0' && line[0] <= '9')
        m.socket = (int8_t)(line[0] - '0');
}

static const at_cmd_t config_seq[] = {
    { "ATE0", 500, 3, NULL },
    { "AT+CMEE=1", 500, 3, NULL },
    { "AT+CGMR", 500, 2, on_cgmr },
    { "AT+CGSN=1", 500, 2, on_cgsn },
    { "AT+CFUN=1", 10000, 2, NULL },
    { "AT+CGDCONT=1,\"IP\",\"" MODEM_APN "\"", 1000, 2, NULL },
    { "AT+CEREG=2", 500, 3, NULL },
    { "AT+CSCON=1", 500, 2, NULL },
    { "AT+CPSMS=1,,,\"01000011\",\"00000001\"", 1000, 2, NULL },
    { "AT+NPSMR=1", 500, 2, NULL },
    { "AT+COPS=0", 30000, 1, NULL },
};
#define CONFIG_STEPS (sizeof config_seq / sizeof config_seq[0])

static void urc_cereg(const char *a)
{
    int32_t v;
    if (!parse_int(&a, &v))
        return;
    /* URC form is +CEREG: <stat>[,...]; the query answer is +CEREG: <n>,<stat>[,...] */
    if (*a >= '0' && *a <= '9' && !parse_int(&a, &v))
        return;
    m.reg_stat = (uint8_t)v;
    if (*a == '"') {
        m.tac = (uint16_t)strtoul(a + 1, NULL, 16);
        a = strchr(a + 1, ',');
        if (a && a[1] == '"')
            m.cell_id = strtoul(a + 2, NULL, 16);
    }
    LOGI(TAG, "reg stat=%u tac=%04x ci=%08lx", m.reg_stat, m.tac, (unsigned long)m.cell_id);
}

static void urc_csq(const char *a)
{
    int32_t v;
    if (parse_int(&a, &v))
        m.rssi = (v == 99) ? 0 : (int16_t)(-113 + 2 * v);
}

static void urc_nsonmi(const char *a)
{
    int32_t sock, len;
    if (parse_int(&a, &sock) && parse_int(&a, &len)) {
        m.rx_count++;
        LOGI(TAG, "socket %ld: %ld bytes waiting", (long)sock, (long)len);
    }
}

static void urc_npsmr(const char *a)
{
    m.psm = (a[0] == '1');
    LOGD(TAG, "psm %s", m.psm ? "entered" : "left");
}

static void urc_cscon(const char *a)
{
    LOGD(TAG, "rrc %s", a[0] == '1' ? "connected" : "idle");
}

static void urc_nsocli(const char *a)
{
    (void)a;
    LOGW(TAG, "socket closed by modem");
    m.socket = -1;
}

static const urc_t urc_table[] = {
    { "+CEREG:", urc_cereg },
    { "+CSQ:", urc_csq },
    { "+NSONMI:", urc_nsonmi },
    { "+NPSMR:", urc_npsmr },
    { "+CSCON:", urc_cscon },
    { "+NSOCLI:", urc_nsocli },
};

void USART2_IRQHandler(void)
{
    uint32_t sr = USART2->SR;
    if (sr & (USART_SR_RXNE | USART_SR_ORE))
        rb_put(&s_rx, (uint8_t)USART2->DR);
}

static void uart_puts(const char *s)
{
    while (*s) {
        while (!(USART2->SR & USART_SR_TXE))
            ;
        USART2->DR = (uint8_t)*s++;
    }
}

static void at_send(const char *cmd, uint16_t timeout, void (*on_line)(const char *))
{
    LOGD(TAG, "> %s", cmd);
    uart_puts(cmd);
    uart_puts("\r\n");
    m.t_cmd = millis();
    m.cmd_timeout = timeout;
    m.cmd_line = on_line;
    m.rsp = RSP_NONE;
}

static rsp_t at_result(void)
{
    if (m.rsp == RSP_NONE && (uint32_t)(millis() - m.t_cmd) > m.cmd_timeout)
        m.rsp = RSP_TIMEOUT;
    return m.rsp;
}

static void handle_line(const char *line)
{
    LOGD(TAG, "< %s", line);
    if (strcmp(line, "OK") == 0) {
        m.rsp = RSP_OK;
        return;
    }
    if (strcmp(line, "ERROR") == 0 || str_starts(line, "+CME ERROR:")) {
        m.cme_error = (line[0] == '+') ? atoi(line + 11) : -1;
        m.rsp = RSP_ERROR;
        return;
    }
    for (size_t i = 0; i < sizeof urc_table / sizeof urc_table[0]; i++) {
        size_t n = strlen(urc_table[i].prefix);
        if (strncmp(line, urc_table[i].prefix, n) == 0) {
            urc_table[i].handler(line + n);
            return;
        }
    }
    if (m.cmd_line)
        m.cmd_line(line);
}

static void set_state(modem_state_t s)
{
    LOGI(TAG, "%s -> %s", state_names[m.state], state_names[s]);
    m.state = s;
    m.t_state = millis();
    m.tries = 0;
}

static void backoff(const char *why)
{
    m.backoff_s = m.backoff_s ? m.backoff_s * 2 : 15;
    if (m.backoff_s > BACKOFF_MAX_S)
        m.backoff_s = BACKOFF_MAX_S;
    LOGE(TAG, "%s, retry in %us", why, m.backoff_s);
    set_state(MS_BACKOFF);
}

void modem_init(void)
{
    RCC->APB1ENR |= (1u << 17);            /* USART2 clock */
    RCC->AHB1ENR |= (1u << 0) | (1u << 2);
    GPIOA->MODER = (GPIOA->MODER & ~0xF0u) | 0xA0u;     /* PA2/PA3 AF7 */
    GPIOA->AFR[0] = (GPIOA->AFR[0] & ~0xFF00u) | 0x7700u;
    GPIOC->MODER |= (1u << (PWRKEY_PIN * 2));
    USART2->BRR = APB1_HZ / 9600u;
    USART2->CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
    NVIC_ISER[38 / 32] = 1u << (38 % 32);
    rb_init(&s_rx, s_rx_mem, sizeof s_rx_mem);
    memset(&m, 0, sizeof m);
    m.socket = -1;
    m.state = MS_OFF;
}

static void poll_rx(void)
{
    int c;
    while ((c = rb_get(&s_rx)) >= 0) {
        if (c == '\r' || c == '\n') {
            if (s_line_len) {
                s_line[s_line_len] = '\0';
                handle_line(s_line);
                s_line_len = 0;
            }
        } else if (s_line_len < LINE_MAX - 1) {
            s_line[s_line_len++] = (char)c;
        }
    }
}

void modem_poll(void)
{
    uint32_t now = millis();
    uint32_t in_state = now - m.t_state;
    rsp_t r;

    poll_rx();

    switch (m.state) {
    case MS_OFF:
        GPIOC->BSRR = 1u << (PWRKEY_PIN + 16);        /* PWRKEY low */
        set_state(MS_POWER_ON);
        break;
    case MS_POWER_ON:
        if (in_state >= 500u)
            GPIOC->BSRR = 1u << PWRKEY_PIN;
        if (in_state >= 2500u) {
            rb_flush(&s_rx);
            at_send("AT", 500, NULL);
            set_state(MS_SYNC);
        }
        break;
    case MS_SYNC:
        r = at_result();
        if (r == RSP_OK) {
            m.seq_idx = 0;
            set_state(MS_CONFIG);
            at_send(config_seq[0].cmd, config_seq[0].timeout_ms, config_seq[0].on_line);
        } else if (r != RSP_NONE) {
            if (++m.tries >= SYNC_TRIES)
                backoff("modem not responding");
            else
                at_send("AT", 500, NULL);
        }
        break;
    case MS_CONFIG:
        r = at_result();
        if (r == RSP_NONE)
            break;
        if (r == RSP_OK) {
            m.tries = 0;
            if (++m.seq_idx >= CONFIG_STEPS) {
                set_state(MS_WAIT_REG);
                break;
            }
        } else if (++m.tries > config_seq[m.seq_idx].retries) {
            LOGE(TAG, "'%s' failed (cme %d)", config_seq[m.seq_idx].cmd, m.cme_error);
            backoff("configuration failed");
            break;
        }
        at_send(config_seq[m.seq_idx].cmd, config_seq[m.seq_idx].timeout_ms,
                config_seq[m.seq_idx].on_line);
        break;
    case MS_WAIT_REG:
        if (m.reg_stat == 1 || m.reg_stat == 5) {
            LOGI(TAG, "registered (%s), rssi %d dBm", m.reg_stat == 5 ? "roaming" : "home", m.rssi);
            m.backoff_s = 0;
            at_send("AT+NSOCR=DGRAM,17," STR(LOCAL_PORT) ",1", 2000, on_nsocr);
            set_state(MS_SOCKET);
        } else if (in_state > REG_TIMEOUT_MS) {
            backoff("network registration timed out");
        } else if (now - m.t_poll >= REG_POLL_MS && at_result() != RSP_NONE) {
            m.t_poll = now;
            at_send((m.tries++ & 1) ? "AT+CSQ" : "AT+CEREG?", 1000, NULL);
        }
        break;
    case MS_SOCKET:
        r = at_result();
        if (r == RSP_OK && m.socket >= 0)
            set_state(MS_READY);
        else if (r != RSP_NONE)
            backoff("socket open failed");
        break;
    case MS_READY:
        if (m.socket < 0) {
            set_state(MS_WAIT_REG);
        } else if (m.tx_pending) {
            at_send(s_txcmd, 5000, NULL);
            set_state(MS_SEND);
        }
        break;
    case MS_SEND:
        r = at_result();
        if (r == RSP_NONE)
            break;
        m.tx_pending = false;
        if (r == RSP_OK) {
            m.tx_count++;
            m.send_errors = 0;
            set_state(MS_READY);
        } else if (++m.send_errors >= 3) {
            backoff("send failed 3 times");
        } else {
            set_state(MS_READY);
        }
        break;
    case MS_BACKOFF:
        if (in_state >= m.backoff_s * 1000u) {
            m.reg_stat = 0;
            m.socket = -1;
            set_state(MS_OFF);
        }
        break;
    default:
        set_state(MS_OFF);
        break;
    }
}

bool modem_ready(void)
{
    return m.state == MS_READY && !m.tx_pending;
}

int modem_send(const uint8_t *data, size_t len)
{
    static char hex[2 * 160 + 1];

    if (!modem_ready() || len > 160)
        return -1;
    hex_encode(hex, sizeof hex, data, len);
    snprintf(s_txcmd, sizeof s_txcmd, "AT+NSOST=%d,\"%s\",%u,%u,\"%s\"",
             m.socket, SERVER_IP, SERVER_PORT, (unsigned)len, hex);
    m.tx_pending = true;
    return (int)len;
}

int16_t modem_rssi(void)
{
    return m.rssi;
}

uint32_t modem_cell_id(void)
{
    return m.cell_id;
}

const char *modem_state_name(void)
{
    return state_names[m.state];
}
