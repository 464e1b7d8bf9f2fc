/* Service console: time, zones, trust store, calibration formulas and module symbols. */
#define _GNU_SOURCE
#include <ctype.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>
#include "app.h"
#include "crypto.h"
#include "net.h"
#include "shell.h"
#include "symtab.h"
#include "trust.h"
#include "tzdb.h"

#define MAX_ARGS 12

/* newlib-nano keeps float conversions out unless these are linked (weak references in vfprintf). */
extern int _printf_float();
extern int _scanf_float();
static int (*const s_stdio_float[])() = { _printf_float, _scanf_float };

typedef struct {
    const char *name;
    const char *help;
    int (*fn)(int argc, char **argv);
} cmd_t;

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);
static int cmd_date(int argc, char **argv);
static int cmd_tz(int argc, char **argv);
static int cmd_certs(int argc, char **argv);
static int cmd_calc(int argc, char **argv);
static int cmd_sym(int argc, char **argv);
static int cmd_stats(int argc, char **argv);
static int cmd_coap(int argc, char **argv);
static int cmd_selftest(int argc, char **argv);

static const cmd_t s_cmds[] = {
    { "help", "list commands", cmd_help },
    { "version", "firmware and library versions", cmd_version },
    { "date", "date [-s 'YYYY-MM-DD HH:MM:SS'] [-u] [-f format]", cmd_date },
    { "tz", "tz [-l prefix] [zone]", cmd_tz },
    { "certs", "list trust anchors", cmd_certs },
    { "calc", "calc expr  (+ - * / ^, func(x), pi, e)", cmd_calc },
    { "sym", "sym [-c] name...  resolve module imports", cmd_sym },
    { "stats", "stats v1 v2 ...  mean, stddev, median", cmd_stats },
    { "coap", "coap  build a registration and a SenML-CBOR report", cmd_coap },
    { "selftest", "crypto known-answer tests", cmd_selftest },
};
#define CMD_COUNT (sizeof s_cmds / sizeof s_cmds[0])

static int cmd_help(int argc, char **argv)
{
    (void)argc, (void)argv;
    for (size_t i = 0; i < CMD_COUNT; i++)
        printf("  %-9s %s\n", s_cmds[i].name, s_cmds[i].help);
    return 0;
}

static int cmd_version(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("%s %s (%s), newlib %s, %u exports, %u trust anchors, %u zones, float stdio %s\n", FW_NAME,
           FW_VERSION_STR, HW_VERSION_STR, _NEWLIB_VERSION, g_symtab_count, g_trust_anchor_count,
           g_tz_zone_count, s_stdio_float[0] && s_stdio_float[1] ? "yes" : "no");
    return 0;
}

static int cmd_date(int argc, char **argv)
{
    const char *fmt = "%a %d %b %Y %H:%M:%S %Z";
    bool utc = false;
    struct tm tm;
    char buf[80];
    int c;

    optind = 1;
    while ((c = getopt(argc, argv, "s:uf:")) != -1) {
        switch (c) {
        case 's':
            memset(&tm, 0, sizeof tm);
            if (strptime(optarg, "%Y-%m-%d %H:%M:%S", &tm) == NULL) {
                printf("date: cannot parse '%s'\n", optarg);
                return 1;
            }
            tm.tm_isdst = -1;
            rtc_set(mktime(&tm));
            break;
        case 'u':
            utc = true;
            break;
        case 'f':
            fmt = optarg;
            break;
        default:
            return 1;
        }
    }
    time_t t = rtc_now();
    if (utc)
        gmtime_r(&t, &tm);
    else
        localtime_r(&t, &tm);
    strftime(buf, sizeof buf, fmt, &tm);
    printf("%s (%lld, day %d of year)\n", buf, (long long)t, tm.tm_yday + 1);
    return 0;
}

static int cmd_tz(int argc, char **argv)
{
    int c;
    const char *prefix = NULL;

    optind = 1;
    while ((c = getopt(argc, argv, "l:")) != -1) {
        if (c == 'l')
            prefix = optarg;
        else
            return 1;
    }
    if (prefix) {
        size_t n = strlen(prefix);
        for (unsigned i = 0; i < g_tz_zone_count; i++)
            if (strncasecmp(g_tz_zones[i].zone, prefix, n) == 0)
                printf("  %-32s %s\n", g_tz_zones[i].zone, g_tz_zones[i].rule);
        return 0;
    }
    if (optind < argc)
        return tz_select(argv[optind]) == 0 ? 0 : 1;
    printf("TZ=%s\n", getenv("TZ") ? getenv("TZ") : "(unset)");
    return 0;
}

static int cmd_certs(int argc, char **argv)
{
    (void)argc, (void)argv;
    trust_list();
    return 0;
}

/* Recursive-descent evaluator for calibration formulas; functions come from the export table. */
typedef struct {
    const char *p;
    const char *err;
    double x;
} expr_t;

static double expr_sum(expr_t *e);

static void skip_ws(expr_t *e)
{
    while (isspace((unsigned char)*e->p))
        e->p++;
}

static double expr_atom(expr_t *e)
{
    skip_ws(e);
    if (*e->p == '(') {
        e->p++;
        double v = expr_sum(e);
        skip_ws(e);
        if (*e->p++ != ')')
            e->err = "missing )";
        return v;
    }
    if (*e->p == '-') {
        e->p++;
        return -expr_atom(e);
    }
    if (isalpha((unsigned char)*e->p)) {
        char name[16];
        size_t n = 0;
        while ((isalnum((unsigned char)*e->p) || *e->p == '_') && n < sizeof name - 1)
            name[n++] = *e->p++;
        name[n] = '\0';
        if (strcmp(name, "pi") == 0)
            return M_PI;
        if (strcmp(name, "e") == 0)
            return M_E;
        if (strcmp(name, "x") == 0)
            return e->x;
        skip_ws(e);
        if (*e->p != '(') {
            e->err = "unknown name";
            return NAN;
        }
        e->p++;
        double a = expr_sum(e), b = 0;
        skip_ws(e);
        bool two = false;
        if (*e->p == ',') {
            e->p++;
            b = expr_sum(e);
            two = true;
        }
        skip_ws(e);
        if (*e->p++ != ')') {
            e->err = "missing )";
            return NAN;
        }
        const void *f = symtab_lookup(name);
        if (f == NULL) {
            e->err = "unknown function";
            return NAN;
        }
        return two ? ((double (*)(double, double))f)(a, b) : ((double (*)(double))f)(a);
    }
    char *end;
    double v = strtod(e->p, &end);
    if (end == e->p)
        e->err = "number expected";
    e->p = end;
    return v;
}

static double expr_pow(expr_t *e)
{
    double v = expr_atom(e);
    skip_ws(e);
    if (*e->p == '^') {
        e->p++;
        return pow(v, expr_pow(e));
    }
    return v;
}

static double expr_prod(expr_t *e)
{
    double v = expr_pow(e);
    for (;;) {
        skip_ws(e);
        if (*e->p == '*')
            e->p++, v *= expr_pow(e);
        else if (*e->p == '/')
            e->p++, v /= expr_pow(e);
        else if (*e->p == '%')
            e->p++, v = fmod(v, expr_pow(e));
        else
            return v;
    }
}

static double expr_sum(expr_t *e)
{
    double v = expr_prod(e);
    for (;;) {
        skip_ws(e);
        if (*e->p == '+')
            e->p++, v += expr_prod(e);
        else if (*e->p == '-')
            e->p++, v -= expr_prod(e);
        else
            return v;
    }
}

double formula_eval(const char *src, double x, const char **err)
{
    expr_t e = { src, NULL, x };
    double v = expr_sum(&e);
    skip_ws(&e);
    if (e.err == NULL && *e.p)
        e.err = "trailing input";
    *err = e.err;
    return v;
}

static int cmd_calc(int argc, char **argv)
{
    char line[128] = "";
    const char *err;

    for (int i = 1; i < argc; i++) {
        strlcat(line, argv[i], sizeof line);
        strlcat(line, " ", sizeof line);
    }
    double v = formula_eval(line, 0, &err);
    if (err) {
        printf("calc: %s\n", err);
        return 1;
    }
    printf("= %.10g (%a, %e)\n", v, v, v);
    return 0;
}

static int cmd_sym(int argc, char **argv)
{
    int c, check = 0;

    optind = 1;
    while ((c = getopt(argc, argv, "c")) != -1)
        check = c == 'c';
    if (check) {
        const void *slots[MAX_ARGS];
        int r = module_link((const char *const *)argv + optind, (unsigned)(argc - optind), slots);
        printf("link: %d\n", r);
        return r ? 1 : 0;
    }
    for (int i = optind; i < argc; i++)
        printf("%-20s %p\n", argv[i], symtab_lookup(argv[i]));
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmd_stats(int argc, char **argv)
{
    double v[MAX_ARGS], sum = 0, sq = 0;
    int n = 0;

    for (int i = 1; i < argc && n < MAX_ARGS; i++) {
        if (sscanf(argv[i], "%lf", &v[n]) == 1)
            n++;
    }
    if (n == 0)
        return 1;
    for (int i = 0; i < n; i++)
        sum += v[i];
    double mean = sum / n;
    for (int i = 0; i < n; i++)
        sq += (v[i] - mean) * (v[i] - mean);
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    double median = n & 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    printf("n=%d mean=%.4f sd=%.4f median=%.4f min=%g max=%g\n", n, mean, sqrt(sq / n), median, v[0],
           v[n - 1]);
    return 0;
}

static int cmd_coap(int argc, char **argv)
{
    uint8_t buf[200], rec[240], back[200];
    char hex[2 * sizeof buf + 1];
    size_t n;
    (void)argc, (void)argv;

    n = lwm2m_register(buf, sizeof buf, FW_NAME, 86400);
    hex_encode(hex, sizeof hex, buf, n);
    printf("register %u B: %s\n", (unsigned)n, hex);
    n = lwm2m_senml_cbor(buf, sizeof buf, 2315, 481, 3590);
    hex_encode(hex, sizeof hex, buf, n);
    printf("senml-cbor %u B: %s\n", (unsigned)n, hex);

    static const uint8_t psk[16] = "fotahub-psk-0001";
    uint8_t cr[32], sr[32], type;
    dtls_dir_t cl, sv;
    for (int i = 0; i < 32; i++)
        cr[i] = (uint8_t)i, sr[i] = (uint8_t)(0xa0 + i);
    dtls_keys_from_psk(psk, sizeof psk, cr, sr, &cl, &sv);
    int r = dtls_seal(&cl, 23, buf, n, rec, sizeof rec);
    memcpy(sv.key, cl.key, 16);
    memcpy(sv.iv, cl.iv, 4);
    int m = r > 0 ? dtls_open(&sv, rec, (size_t)r, back, sizeof back, &type) : -1;
    printf("dtls record %d B, opens to %d B (%s)\n", r, m,
           m == (int)n && memcmp(back, buf, n) == 0 ? "match" : "MISMATCH");
    return 0;
}

static int cmd_selftest(int argc, char **argv)
{
    (void)argc, (void)argv;
    int r = crypto_selftest();
    printf("crypto selftest: %s (%d)\n", r == 0 ? "pass" : "FAIL", r);
    return r != 0;
}

/* Splits in place at blanks; 'single quotes' group words. */
static int split(char *s, char **argv)
{
    int argc = 0;

    while (*s && argc < MAX_ARGS) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0')
            break;
        char stop = ' ';
        if (*s == '\'') {
            stop = '\'';
            s++;
        }
        argv[argc++] = s;
        while (*s && *s != stop && (stop == '\'' || *s != '\t'))
            s++;
        if (*s)
            *s++ = '\0';
    }
    return argc;
}

int shell_exec(const char *line)
{
    char buf[160], *argv[MAX_ARGS + 1];
    int argc;

    strlcpy(buf, line, sizeof buf);
    argc = split(buf, argv);
    argv[argc] = NULL;
    if (argc == 0)
        return 0;
    for (size_t i = 0; i < CMD_COUNT; i++) {
        if (strcmp(argv[0], s_cmds[i].name) == 0)
            return s_cmds[i].fn(argc, argv);
    }
    printf("%s: unknown command, try help\n", argv[0]);
    return 1;
}

void shell_boot_script(void)
{
    static const char *const script[] = {
        "version",
        "selftest",
        "tz Europe/Berlin",
        "date -f %Y-%m-%dT%H:%M:%S%z",
        "calc 0.01 * (sqrt(2) + log10(1013.25)) ^ 2",
        "coap",
    };
    for (size_t i = 0; i < sizeof script / sizeof script[0]; i++) {
        printf("> %s\n", script[i]);
        shell_exec(script[i]);
    }
}
