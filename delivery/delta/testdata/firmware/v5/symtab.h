/* Export table for loadable calibration modules (generated in symtab.c). */
#ifndef SYMTAB_H
#define SYMTAB_H

typedef struct {
    const char *name;
    const void *addr;
} symtab_entry_t;

extern const symtab_entry_t g_symtab[];
extern const unsigned g_symtab_count;

const void *symtab_lookup(const char *name);
int module_link(const char *const *imports, unsigned n, const void **slots);

#endif
