/* ir_kern: the compute ops' kernel lists (IrKernel), interned per class; see ir.h.
 *
 * A pipeline issues the same layer's kernels for every micro-batch, so most lists repeat: each
 * distinct list is stored once and the ops point at it (4 bytes an op). Adding a list hashes its
 * bytes (ir_kernels_hash, about 60 ns for a decoder layer's nine records) and allocates only
 * when the list is new (or has more than 64 records, for the copy it hashes). */
#include "ir_priv.h"

#include "../hw/hw.h"

#include <string.h>

typedef struct {
    const GArray *array;  /* stored key: records at array[start]; NULL for a probe */
    const IrKernel *list; /* probe key: the records themselves */
    uint32_t start, n;
    guint hash;
} ListKey;

static const IrKernel *key_list(const ListKey *k)
{
    return k->array ? &g_array_index(k->array, IrKernel, k->start) : k->list;
}

static guint key_hash(gconstpointer p)
{
    return ((const ListKey *)p)->hash;
}

static gboolean key_equal(gconstpointer a, gconstpointer b)
{
    const ListKey *x = a, *y = b;
    return x->n == y->n && x->hash == y->hash &&
           memcmp(key_list(x), key_list(y), x->n * sizeof(IrKernel)) == 0;
}

guint ir_kernels_hash(const IrKernel *list, int n)
{
    /* FNV-1a over 64-bit words, folding the high half down at each step (doubles differ mostly
     * in their high bits): 6 multiplies a record, about 7 ns on one core of the development
     * machine, where FNV-1a a byte at a time took 44 */
    G_STATIC_ASSERT(sizeof(IrKernel) % sizeof(uint64_t) == 0);
    uint64_t h = 14695981039346656037u;
    size_t words = (size_t)n * (sizeof(IrKernel) / sizeof(uint64_t));
    for (size_t i = 0; i < words; i++) {
        uint64_t w;
        memcpy(&w, (const char *)list + i * sizeof w, sizeof w);
        h = (h ^ w) * 1099511628211u;
        h ^= h >> 32;
    }
    return (guint)h;
}

uint32_t ir_kernels_add(IrClass *c, const IrKernel *list, int n)
{
    if (n <= 0)
        return 0;
    /* the LAST flag is part of the bytes compared: set it on a copy, on the stack for the usual
     * few records, on the heap past them (an alloca of a schedule's 200,000-record list, or of
     * one op's list for a layer list of 200,000 convolutions, overflowed the 8 MiB stack) */
    IrKernel small[64];
    IrKernel *copy = n <= (int)G_N_ELEMENTS(small) ? small : g_new(IrKernel, n);
    memcpy(copy, list, (size_t)n * sizeof *copy);
    for (int i = 0; i < n; i++)
        copy[i].flags = (uint16_t)(copy[i].flags & ~IR_KERN_LAST);
    copy[n - 1].flags |= IR_KERN_LAST;
    ListKey probe = {NULL, copy, 0, (uint32_t)n, ir_kernels_hash(copy, n)};
    if (!c->kernel_index)
        c->kernel_index = g_hash_table_new_full(key_hash, key_equal, g_free, NULL);
    gpointer found = g_hash_table_lookup(c->kernel_index, &probe);
    if (found) {
        if (copy != small)
            g_free(copy);
        return GPOINTER_TO_UINT(found);
    }
    ListKey *key = g_new(ListKey, 1);
    *key = (ListKey){c->kernels, NULL, c->kernels->len, (uint32_t)n, probe.hash};
    g_array_append_vals(c->kernels, copy, (guint)n);
    uint32_t first = key->start + 1;
    g_hash_table_insert(c->kernel_index, key, GUINT_TO_POINTER(first));
    if (copy != small)
        g_free(copy);
    return first;
}

const IrKernel *ir_kernels_of(const IrClass *c, uint32_t kern_first, int *n)
{
    *n = 0;
    if (kern_first == 0 || kern_first > c->kernels->len)
        return NULL;
    const IrKernel *list = &g_array_index(c->kernels, IrKernel, kern_first - 1);
    int count = 1;
    while (!(list[count - 1].flags & IR_KERN_LAST) && kern_first - 1 + (uint32_t)count < c->kernels->len)
        count++;
    *n = count;
    return list;
}

const char *ir_kern_class_name(IrKernClass cls)
{
    static const char *names[IR_KERN_CLASS_COUNT] = {"gemm", "attention", "memory", "flops",
                                                     "conv"};
    return (unsigned)cls < IR_KERN_CLASS_COUNT ? names[cls] : "?";
}

/* ---- JSON (schedule version 3) ----
 * A class carries "kernel_lists": [[kernel, ...], ...], each distinct list once, and a compute
 * op "kernel_list": its index there. A kernel is {"class", "dtype", the shape fields of its
 * class, "share" (absent: 1)}: gemm m, n, k, batch; attention batch_heads, seq, head_dim,
 * window (absent: 0), causal, backward, impl (flash2, triton or flash1); memory bytes, kernels; flops
 * flops; conv (version 5) m, n, k, bytes. A misaligned gemm (kern.h) says "misaligned": true
 * (absent: false). */

static const char *const shape_keys[IR_KERN_CLASS_COUNT][4] = {
    [IR_KERN_GEMM] = {"m", "n", "k", "batch"},
    [IR_KERN_ATTENTION] = {"batch_heads", "seq", "head_dim", "window"},
    [IR_KERN_MEMORY] = {"bytes", "kernels"},
    [IR_KERN_FLOPS] = {"flops"},
    [IR_KERN_CONV] = {"m", "n", "k", "bytes"},
};

static cJSON *kernel_to_json(const IrKernel *k)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "class", ir_kern_class_name((IrKernClass)k->cls));
    cJSON_AddStringToObject(o, "dtype", hw_dtype_name((HwDtype)k->dtype));
    for (int i = 0; i < 4 && shape_keys[k->cls][i]; i++)
        if (k->cls != IR_KERN_ATTENTION || i < 3 || k->shape[i] > 0)
            cJSON_AddNumberToObject(o, shape_keys[k->cls][i], k->shape[i]);
    if (k->cls == IR_KERN_ATTENTION) {
        cJSON_AddBoolToObject(o, "causal", (k->flags & IR_KERN_CAUSAL) != 0);
        cJSON_AddBoolToObject(o, "backward", (k->flags & IR_KERN_BACKWARD) != 0);
        cJSON_AddStringToObject(o, "impl", (k->flags & IR_KERN_TRITON)   ? "triton"
                                           : (k->flags & IR_KERN_FLASH1) ? "flash1"
                                                                         : "flash2");
    }
    if (k->cls == IR_KERN_GEMM && (k->flags & IR_KERN_MISALIGNED))
        cJSON_AddBoolToObject(o, "misaligned", true);
    if (k->share != 1)
        cJSON_AddNumberToObject(o, "share", k->share);
    return o;
}

cJSON *ir_kernel_lists_to_json(const IrClass *c, uint32_t **list_of)
{
    *list_of = NULL;
    if (c->kernels->len == 0)
        return NULL;
    *list_of = g_new0(uint32_t, c->kernels->len);
    cJSON *lists = cJSON_CreateArray();
    cJSON *cur = NULL;
    uint32_t n_lists = 0;
    for (guint i = 0; i < c->kernels->len; i++) {
        const IrKernel *k = &g_array_index(c->kernels, IrKernel, i);
        if (!cur) {
            (*list_of)[i] = n_lists++;
            cur = cJSON_CreateArray();
            cJSON_AddItemToArray(lists, cur);
        }
        cJSON_AddItemToArray(cur, kernel_to_json(k));
        if (k->flags & IR_KERN_LAST)
            cur = NULL;
    }
    return lists;
}

static bool read_kernel(CfgObj *ko, IrKernel *k, GError **error)
{
    static const char *classes[IR_KERN_CLASS_COUNT], *dtypes[HW_DTYPE_COUNT];
    for (int i = 0; i < IR_KERN_CLASS_COUNT; i++) classes[i] = ir_kern_class_name((IrKernClass)i);
    for (int i = 0; i < HW_DTYPE_COUNT; i++) dtypes[i] = hw_dtype_name((HwDtype)i);
    memset(k, 0, sizeof *k);
    k->share = 1;
    int cls = 0, dtype = 0;
    bool ok = ir_json_enum(ko, "class", classes, IR_KERN_CLASS_COUNT, &cls, error) &&
              ir_json_enum(ko, "dtype", dtypes, HW_DTYPE_COUNT, &dtype, error);
    k->cls = (uint8_t)cls;
    k->dtype = (uint8_t)dtype;
    /* sizes up to 2^60 (the generators' GEN_SIZE_MAX), counts up to 2^30 */
    for (int i = 0; ok && i < 4 && shape_keys[cls][i]; i++) {
        bool optional = cls == IR_KERN_ATTENTION && i == 3;
        double max = cls == IR_KERN_MEMORY && i == 1 ? 1073741824.0 : 1152921504606846976.0;
        ok = cfg_get_double(ko, shape_keys[cls][i], !optional, 0, max, &k->shape[i], error);
        if (ok && cls == IR_KERN_MEMORY && i == 1 && k->shape[i] != (double)(int64_t)k->shape[i]) {
            cfg_set_error(error, ko->file, ko->path, "kernels", "expected a whole number");
            ok = false;
        }
    }
    if (ok && cls == IR_KERN_ATTENTION) {
        static const char *impls[] = {"flash2", "triton", "flash1"};
        bool causal = false, backward = false;
        int impl = 0;
        ok = cfg_get_bool(ko, "causal", true, &causal, error) &&
             cfg_get_bool(ko, "backward", true, &backward, error) &&
             ir_json_enum(ko, "impl", impls, 3, &impl, error);
        k->flags = (uint16_t)((causal ? IR_KERN_CAUSAL : 0) | (backward ? IR_KERN_BACKWARD : 0) |
                              (impl == 1 ? IR_KERN_TRITON : 0) | (impl == 2 ? IR_KERN_FLASH1 : 0));
    }
    if (ok && cls == IR_KERN_GEMM) {
        bool misaligned = false;
        ok = cfg_get_bool(ko, "misaligned", false, &misaligned, error);
        k->flags = misaligned ? IR_KERN_MISALIGNED : 0;
    }
    ok = ok && cfg_get_double(ko, "share", false, 0, 1e6, &k->share, error);
    return ok && cfg_obj_check_unknown(ko, "expected class, dtype, the shape of its class (gemm: m, n, k, batch, misaligned; "
                                           "attention: batch_heads, seq, head_dim, window, causal, "
                                           "backward, impl; memory: bytes, kernels; flops: flops; "
                                           "conv: m, n, k, bytes) "
                                           "and share", error);
}

GArray *ir_kernel_lists_read(IrClass *c, CfgObj *co, GError **error)
{
    const cJSON *lists = cfg_item(co, "kernel_lists");
    if (!cJSON_IsArray(lists)) {
        cfg_set_error(error, co->file, co->path, "kernel_lists",
                      "expected an array of kernel lists (arrays of kernel objects)");
        return NULL;
    }
    GArray *firsts = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    GArray *list = g_array_new(FALSE, FALSE, sizeof(IrKernel));
    bool ok = true;
    int i = 0;
    for (const cJSON *l = lists->child; l && ok; l = l->next, i++) {
        if (!cJSON_IsArray(l) || cJSON_GetArraySize(l) == 0) {
            char *field = g_strdup_printf("kernel_lists[%d]", i);
            cfg_set_error(error, co->file, co->path, field,
                          "expected a non-empty array of kernel objects");
            g_free(field);
            ok = false;
            break;
        }
        g_array_set_size(list, 0);
        int j = 0;
        for (const cJSON *it = l->child; it && ok; it = it->next, j++) {
            CfgObj ko;
            char *path = g_strdup_printf("%s.kernel_lists[%d][%d]", co->path, i, j);
            IrKernel k;
            ok = cfg_obj_open(&ko, co->file, path, it, error) && read_kernel(&ko, &k, error);
            if (ok)
                g_array_append_val(list, k);
            if (ko.seen)
                cfg_obj_close(&ko);
            g_free(path);
        }
        uint32_t first = ok ? ir_kernels_add(c, (const IrKernel *)(void *)list->data,
                                             (int)list->len)
                            : 0;
        g_array_append_val(firsts, first);
    }
    g_array_free(list, TRUE);
    if (!ok) {
        g_array_free(firsts, TRUE);
        return NULL;
    }
    return firsts;
}
