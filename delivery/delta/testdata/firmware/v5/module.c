/* Symbol resolution for loadable calibration modules against the firmware's export table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "symtab.h"

static int sym_cmp(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const symtab_entry_t *)elem)->name);
}

const void *symtab_lookup(const char *name)
{
    const symtab_entry_t *e = bsearch(name, g_symtab, g_symtab_count, sizeof g_symtab[0], sym_cmp);
    return e ? e->addr : NULL;
}

int module_link(const char *const *imports, unsigned n, const void **slots)
{
    int missing = 0;

    for (unsigned i = 0; i < n; i++) {
        slots[i] = symtab_lookup(imports[i]);
        if (slots[i] == NULL) {
            printf("module: unresolved import %s\n", imports[i]);
            missing++;
        }
    }
    return missing ? -missing : 0;
}
