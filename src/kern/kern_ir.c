/* kern_ir: the kernel model's shapes as the schedule carries them (IrKernel); see kern.h.
 *
 * The conversion is exact both ways for what the cost functions read: fused attention's batch
 * and heads travel as their product (the cost depends on them only through it), the impl as a
 * flag. Generators cost an op from its converted list with kern_list_s, as the simulator does,
 * so a schedule re-costed for the GPU it was made for gets the same seconds bit for bit. */
#include "kern.h"

#include <string.h>

void kern_to_ir(const KernShape *shape, IrKernel *out)
{
    memset(out, 0, sizeof *out);
    out->dtype = (uint8_t)shape->dtype;
    out->share = shape->share;
    switch (shape->cls) {
    case KERN_GEMM:
    case KERN_CONV: /* a convolution's fourth figure is its bytes (its batch is 1) */
        out->cls = shape->cls == KERN_CONV ? IR_KERN_CONV : IR_KERN_GEMM;
        out->shape[0] = shape->m;
        out->shape[1] = shape->n;
        out->shape[2] = shape->k;
        out->shape[3] = shape->cls == KERN_CONV ? shape->bytes : shape->batch;
        out->flags = shape->misaligned && shape->cls == KERN_GEMM ? IR_KERN_MISALIGNED : 0;
        break;
    case KERN_ATTENTION:
        out->cls = IR_KERN_ATTENTION;
        out->shape[0] = shape->batch * shape->heads;
        out->shape[1] = shape->seq;
        out->shape[2] = shape->head_dim;
        out->shape[3] = shape->window;
        out->flags = (uint16_t)((shape->causal ? IR_KERN_CAUSAL : 0) |
                                (shape->backward ? IR_KERN_BACKWARD : 0) |
                                (shape->impl == KERN_ATTN_TRITON ? IR_KERN_TRITON : 0) |
                                (shape->impl == KERN_ATTN_FLASH1 ? IR_KERN_FLASH1 : 0));
        break;
    case KERN_MEMORY:
        out->cls = IR_KERN_MEMORY;
        out->shape[0] = shape->bytes;
        out->shape[1] = shape->kernels;
        break;
    default:
        out->cls = IR_KERN_FLOPS;
        out->shape[0] = shape->flops;
        break;
    }
}

void kern_from_ir(const IrKernel *k, KernShape *out)
{
    memset(out, 0, sizeof *out);
    out->dtype = (HwDtype)k->dtype;
    out->share = k->share;
    switch ((IrKernClass)k->cls) {
    case IR_KERN_GEMM:
    case IR_KERN_CONV: {
        bool conv = k->cls == IR_KERN_CONV; /* its fourth figure is its bytes, its batch 1 */
        *out = (KernShape){.cls = conv ? KERN_CONV : KERN_GEMM, .dtype = out->dtype,
                           .share = k->share, .m = k->shape[0], .n = k->shape[1],
                           .k = k->shape[2], .batch = conv ? 1 : k->shape[3],
                           .bytes = conv ? k->shape[3] : 0,
                           .misaligned = !conv && (k->flags & IR_KERN_MISALIGNED) != 0};
        break;
    }
    case IR_KERN_ATTENTION:
        *out = (KernShape){.cls = KERN_ATTENTION, .dtype = out->dtype, .share = k->share,
                           .batch = k->shape[0], .heads = 1, .seq = k->shape[1],
                           .head_dim = k->shape[2], .window = k->shape[3],
                           .causal = (k->flags & IR_KERN_CAUSAL) != 0,
                           .backward = (k->flags & IR_KERN_BACKWARD) != 0,
                           .impl = (k->flags & IR_KERN_TRITON)   ? KERN_ATTN_TRITON
                                   : (k->flags & IR_KERN_FLASH1) ? KERN_ATTN_FLASH1
                                                                 : KERN_ATTN_FLASH2};
        break;
    case IR_KERN_MEMORY:
        out->cls = KERN_MEMORY;
        out->bytes = k->shape[0];
        out->kernels = (int)k->shape[1];
        break;
    default:
        out->cls = KERN_FLOPS;
        out->flops = k->shape[0];
        break;
    }
}

double kern_list_s(const HwGpu *gpu, const IrKernel *list, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) {
        KernShape shape;
        kern_from_ir(&list[i], &shape);
        s += shape.share * kern_time_s(gpu, &shape);
    }
    return s;
}

bool kern_schedule_has_dtype(const IrSchedule *s, HwDtype dtype)
{
    for (int c = 0; c < s->n_classes; c++) {
        const IrClass *cls = s->classes[c];
        for (guint i = 0; i < cls->kernels->len; i++)
            if (g_array_index(cls->kernels, IrKernel, i).dtype == dtype)
                return true;
    }
    return false;
}

void kern_schedule_retime(IrSchedule *s, const HwGpu *gpu)
{
    for (int c = 0; c < s->n_classes; c++) {
        IrClass *cls = s->classes[c];
        if (cls->kernels->len == 0)
            continue;
        /* per list (by its first record): its time, or -1 until costed */
        double *cache = g_new(double, cls->kernels->len);
        for (guint i = 0; i < cls->kernels->len; i++)
            cache[i] = -1;
        /* the payloads, not the ops: each is shared by the ops of equal ones */
        for (guint i = 0; i < cls->computes->len; i++) {
            IrCompute *p = &g_array_index(cls->computes, IrCompute, i);
            uint32_t first = p->kern_first;
            if (first == 0 || first > cls->kernels->len)
                continue;
            if (cache[first - 1] < 0) {
                int n;
                const IrKernel *list = ir_kernels_of(cls, first, &n);
                cache[first - 1] = kern_list_s(gpu, list, n);
            }
            p->seconds = cache[first - 1];
        }
        g_free(cache);
    }
    /* payloads changed in place: their index goes (rebuilt if more are added) */
    ir_schedule_compact(s);
}
