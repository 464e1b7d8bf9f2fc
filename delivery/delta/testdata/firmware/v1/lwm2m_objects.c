/* LwM2M object/resource descriptors and a SenML-JSON report encoder. */
#include <stdio.h>
#include <string.h>
#include "app.h"

typedef enum { RT_STRING, RT_INT, RT_FLOAT, RT_BOOL, RT_OPAQUE, RT_TIME, RT_EXEC } res_type_t;

enum { OP_R = 1, OP_W = 2, OP_E = 4, OP_RW = OP_R | OP_W };

typedef struct {
    uint16_t id;
    uint8_t type;
    uint8_t ops;
    const char *name;
    int32_t (*read_int)(void);
} lwm2m_res_t;

typedef struct {
    uint16_t oid;
    uint8_t instances;
    uint8_t count;
    const char *name;
    const lwm2m_res_t *res;
} lwm2m_obj_t;

static sensor_sample_t s_last;

static int32_t rd_battery(void) { return 87; }
static int32_t rd_mem_free(void) { return (int32_t)(heap_free() / 1024u); }
static int32_t rd_uptime(void) { return (int32_t)(millis() / 1000u); }
static int32_t rd_rssi(void) { return modem_rssi(); }
static int32_t rd_cell(void) { return (int32_t)modem_cell_id(); }
static int32_t rd_temp(void) { return s_last.temp_cdeg; }
static int32_t rd_rh(void) { return s_last.rh_pmil; }
static int32_t rd_tmin(void) { int16_t lo, hi; sensor_stats(&lo, &hi); return lo; }
static int32_t rd_tmax(void) { int16_t lo, hi; sensor_stats(&lo, &hi); return hi; }

static const lwm2m_res_t device_res[] = {
    { 0, RT_STRING, OP_R, "Manufacturer", NULL },
    { 1, RT_STRING, OP_R, "Model Number", NULL },
    { 2, RT_STRING, OP_R, "Serial Number", NULL },
    { 3, RT_STRING, OP_R, "Firmware Version", NULL },
    { 4, RT_EXEC, OP_E, "Reboot", NULL },
    { 9, RT_INT, OP_R, "Battery Level", rd_battery },
    { 10, RT_INT, OP_R, "Memory Free", rd_mem_free },
    { 11, RT_INT, OP_R, "Error Code", NULL },
    { 13, RT_TIME, OP_RW, "Current Time", rd_uptime },
    { 16, RT_STRING, OP_R, "Supported Binding and Modes", NULL },
    { 17, RT_STRING, OP_R, "Device Type", NULL },
    { 18, RT_STRING, OP_R, "Hardware Version", NULL },
    { 19, RT_STRING, OP_R, "Software Version", NULL },
};

static const lwm2m_res_t connmon_res[] = {
    { 0, RT_INT, OP_R, "Network Bearer", NULL },
    { 1, RT_INT, OP_R, "Available Network Bearer", NULL },
    { 2, RT_INT, OP_R, "Radio Signal Strength", rd_rssi },
    { 3, RT_INT, OP_R, "Link Quality", NULL },
    { 4, RT_STRING, OP_R, "IP Addresses", NULL },
    { 8, RT_INT, OP_R, "Cell ID", rd_cell },
    { 9, RT_INT, OP_R, "SMNC", NULL },
    { 10, RT_INT, OP_R, "SMCC", NULL },
};

static const lwm2m_res_t fwupdate_res[] = {
    { 0, RT_OPAQUE, OP_W, "Package", NULL },
    { 1, RT_STRING, OP_RW, "Package URI", NULL },
    { 2, RT_EXEC, OP_E, "Update", NULL },
    { 3, RT_INT, OP_R, "State", NULL },
    { 5, RT_INT, OP_R, "Update Result", NULL },
    { 6, RT_STRING, OP_R, "PkgName", NULL },
    { 7, RT_STRING, OP_R, "PkgVersion", NULL },
    { 8, RT_INT, OP_R, "Firmware Update Protocol Support", NULL },
    { 9, RT_INT, OP_R, "Firmware Update Delivery Method", NULL },
};

static const lwm2m_res_t temp_res[] = {
    { 5700, RT_FLOAT, OP_R, "Sensor Value", rd_temp },
    { 5701, RT_STRING, OP_R, "Sensor Units", NULL },
    { 5601, RT_FLOAT, OP_R, "Min Measured Value", rd_tmin },
    { 5602, RT_FLOAT, OP_R, "Max Measured Value", rd_tmax },
    { 5603, RT_FLOAT, OP_R, "Min Range Value", NULL },
    { 5604, RT_FLOAT, OP_R, "Max Range Value", NULL },
    { 5605, RT_EXEC, OP_E, "Reset Min and Max Measured Values", NULL },
};

static const lwm2m_res_t hum_res[] = {
    { 5700, RT_FLOAT, OP_R, "Sensor Value", rd_rh },
    { 5701, RT_STRING, OP_R, "Sensor Units", NULL },
    { 5603, RT_FLOAT, OP_R, "Min Range Value", NULL },
    { 5604, RT_FLOAT, OP_R, "Max Range Value", NULL },
};

#define OBJ(oid, name, tab) { oid, 1, sizeof tab / sizeof tab[0], name, tab }
static const lwm2m_obj_t objects[] = {
    OBJ(3, "Device", device_res),
    OBJ(4, "Connectivity Monitoring", connmon_res),
    OBJ(5, "Firmware Update", fwupdate_res),
    OBJ(3303, "Temperature", temp_res),
    OBJ(3304, "Humidity", hum_res),
};

static const char *const type_names[] = {
    "string", "integer", "float", "boolean", "opaque", "time", "execute",
};

static int put_fixed(char *buf, size_t len, int32_t v, int32_t scale)
{
    const char *sign = v < 0 ? "-" : "";
    if (v < 0)
        v = -v;
    if (scale == 100)
        return snprintf(buf, len, "%s%ld.%02ld", sign, (long)(v / 100), (long)(v % 100));
    return snprintf(buf, len, "%s%ld.%01ld", sign, (long)(v / 10), (long)(v % 10));
}

size_t lwm2m_encode_report(char *buf, size_t len, const sensor_sample_t *s)
{
    char t[16], h[16];
    int16_t tmin, tmax;
    char tmin_s[16], tmax_s[16];

    s_last = *s;
    sensor_stats(&tmin, &tmax);
    put_fixed(t, sizeof t, s->temp_cdeg, 100);
    put_fixed(h, sizeof h, s->rh_pmil, 10);
    put_fixed(tmin_s, sizeof tmin_s, tmin, 100);
    put_fixed(tmax_s, sizeof tmax_s, tmax, 100);
    int n = snprintf(buf, len,
                     "[{\"bn\":\"/3303/0/\",\"n\":\"5700\",\"v\":%s},"
                     "{\"n\":\"5601\",\"v\":%s},{\"n\":\"5602\",\"v\":%s},"
                     "{\"bn\":\"/3304/0/\",\"n\":\"5700\",\"v\":%s},"
                     "{\"bn\":\"/4/0/\",\"n\":\"2\",\"v\":%d}]",
                     t, tmin_s, tmax_s, h, modem_rssi());
    return (n < 0 || (size_t)n >= len) ? 0 : (size_t)n;
}

void lwm2m_dump(void)
{
    for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++) {
        const lwm2m_obj_t *o = &objects[i];
        printf("/%u %s (%u resources)\n", o->oid, o->name, o->count);
        for (size_t j = 0; j < o->count; j++) {
            const lwm2m_res_t *r = &o->res[j];
            printf("  /%u/0/%-5u %-8s %c%c%c %s", o->oid, r->id, type_names[r->type],
                   (r->ops & OP_R) ? 'R' : '-', (r->ops & OP_W) ? 'W' : '-',
                   (r->ops & OP_E) ? 'E' : '-', r->name);
            if (r->read_int)
                printf(" = %ld", (long)r->read_int());
            putchar('\n');
        }
    }
}
