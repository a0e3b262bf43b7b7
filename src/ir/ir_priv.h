/* ir_priv: what the schedule's JSON reader and writer (ir_json.c) share with the kernel lists'
 * (ir_kern.c). Internal to src/ir. */
#ifndef FSD_IR_PRIV_H
#define FSD_IR_PRIV_H

#include "ir.h"
#include "../util/cfg.h"

/* A string field that must be one of `names`; the error lists them. */
bool ir_json_enum(CfgObj *co, const char *key, const char *const *names, int n, int *out,
                  GError **error);
/* A class's "kernel_lists" (NULL when it has none) and, in *list_of (g_free it), the list index
 * of each list's first record, by record index. */
cJSON *ir_kernel_lists_to_json(const IrClass *c, uint32_t **list_of);
/* Reads a class's "kernel_lists" into the class: each list's kern_first, by list index (an
 * array to g_array_free), or NULL with an error naming the file, path and field. */
GArray *ir_kernel_lists_read(IrClass *c, CfgObj *co, GError **error);

#endif
