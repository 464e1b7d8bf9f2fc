/* Ring buffer, console output for newlib-nano printf, logging and small helpers. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include "app.h"
#include "hw.h"

extern volatile uint32_t g_ticks;
extern char _heap_start, _heap_limit;

int g_log_level = LOG_INFO;
static char *s_brk;

void rb_init(ringbuf_t *rb, uint8_t *mem, uint16_t size)
{
    rb->buf = mem;
    rb->size = size;
    rb->head = rb->tail = 0;
}

bool rb_put(ringbuf_t *rb, uint8_t c)
{
    uint16_t next = (uint16_t)((rb->head + 1) % rb->size);
    if (next == rb->tail)
        return false;
    rb->buf[rb->head] = c;
    rb->head = next;
    return true;
}

int rb_get(ringbuf_t *rb)
{
    if (rb->head == rb->tail)
        return -1;
    uint8_t c = rb->buf[rb->tail];
    rb->tail = (uint16_t)((rb->tail + 1) % rb->size);
    return c;
}

uint16_t rb_count(const ringbuf_t *rb)
{
    return (uint16_t)((rb->head + rb->size - rb->tail) % rb->size);
}

void rb_flush(ringbuf_t *rb)
{
    rb->tail = rb->head;
}

void console_init(void)
{
    RCC->APB2ENR |= (1u << 4);           /* USART1 clock */
    RCC->AHB1ENR |= (1u << 0);           /* GPIOA clock */
    GPIOA->MODER = (GPIOA->MODER & ~(0xFu << 18)) | (0xAu << 18);  /* PA9/PA10 AF */
    GPIOA->AFR[1] = (GPIOA->AFR[1] & ~0xFF0u) | 0x770u;
    USART1->BRR = APB2_HZ / 115200u;
    USART1->CR1 = USART_CR1_UE | USART_CR1_TE;
}

static void console_putc(char c)
{
    while (!(USART1->SR & USART_SR_TXE))
        ;
    USART1->DR = (uint8_t)c;
}

/* newlib syscall: all stdout/stderr output goes to the debug UART. */
int _write(int fd, const char *buf, int len)
{
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    for (int i = 0; i < len; i++) {
        if (buf[i] == '\n')
            console_putc('\r');
        console_putc(buf[i]);
    }
    return len;
}

void *_sbrk(ptrdiff_t incr)
{
    if (s_brk == NULL)
        s_brk = &_heap_start;
    if (s_brk + incr > &_heap_limit) {
        errno = ENOMEM;
        return (void *)-1;
    }
    char *prev = s_brk;
    s_brk += incr;
    return prev;
}

uint32_t heap_free(void)
{
    char *brk = s_brk ? s_brk : &_heap_start;
    return (uint32_t)(&_heap_limit - brk);
}

uint32_t millis(void)
{
    return g_ticks;
}

void delay_ms(uint32_t ms)
{
    uint32_t start = g_ticks;
    while ((uint32_t)(g_ticks - start) < ms)
        __asm volatile("wfi");
}

void log_write(int level, const char *tag, const char *fmt, ...)
{
    static const char level_chars[] = "EWID";
    va_list ap;

    if (level > g_log_level)
        return;
    uint32_t t = millis();
    printf("[%5lu.%03lu] %c/%-6s ", (unsigned long)(t / 1000u),
           (unsigned long)(t % 1000u), level_chars[level & 3], tag);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

size_t hex_encode(char *dst, size_t dstlen, const uint8_t *src, size_t n)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t i;

    if (dstlen == 0)
        return 0;
    for (i = 0; i < n && 2 * i + 2 < dstlen; i++) {
        dst[2 * i] = digits[src[i] >> 4];
        dst[2 * i + 1] = digits[src[i] & 0xF];
    }
    dst[2 * i] = '\0';
    return 2 * i;
}

bool parse_int(const char **p, int32_t *out)
{
    const char *s = *p;
    bool neg = false;
    int32_t v = 0;

    while (*s == ' ')
        s++;
    if (*s == '-' || *s == '+')
        neg = (*s++ == '-');
    if (*s < '0' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (*s++ - '0');
    if (*s == ',')
        s++;
    *out = neg ? -v : v;
    *p = s;
    return true;
}

bool str_starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}
