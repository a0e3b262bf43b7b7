/* pp_names: the pipeline generator's op names and buffer names (pp.c), composed without
 * formatting each. Internal to src/strategy. */
#include "pp_priv.h"

#include <string.h>

/* Op names are composed, not formatted (ir_string_join): the step's label ("F3.0 warm-up",
 * interned once per step) and what the op is of it (" layer 5", a TP exchange's "tp allreduce "
 * before it), each interned once per class. Formatting each name and interning it was two thirds
 * of generating a 1T pipeline; a join is one lookup of a pair. The texts are the same. */

/* " layer 5" or " recompute layer 5": interned on the class's first use */
uint32_t pp_layer_suffix(Pp *pp, int layer, bool recompute)
{
    uint32_t *id = &pp->layer_suffix[2 * layer + recompute];
    if (*id == UINT32_MAX) {
        char text[48];
        g_snprintf(text, sizeof text, "%s layer %d", recompute ? " recompute" : "", layer);
        *id = ir_string(pp->g.cls, text);
    }
    return *id;
}

/* "tp allreduce " + what (kind IR_COLL_KIND_COUNT: "tp allgather (input again) ") */
uint32_t pp_tp_name(Pp *pp, IrCollKind kind, uint32_t what)
{
    uint32_t *id = &pp->tp_prefix[kind];
    if (*id == UINT32_MAX) {
        char text[48];
        g_snprintf(text, sizeof text, "tp %s ",
                   kind == IR_COLL_KIND_COUNT ? "allgather (input again)"
                                              : ir_coll_kind_name(kind));
        *id = ir_string(pp->g.cls, text);
    }
    return ir_string_join(pp->g.cls, *id, what);
}

/* A step's label and buffer names ("F12.0 steady", "act:0:12"), written without printf: two
 * or three a step, and g_snprintf was a tenth of generating an interleaved 1T pipeline. The
 * text buffers are 64 bytes: short words and two ints. */
char *pp_put_text(char *at, const char *text)
{
    while (*text)
        *at++ = *text++;
    *at = 0;
    return at;
}

static char *put_int(char *at, int value)
{
    char digits[12];
    int n = 0;
    unsigned u = value < 0 ? 0u - (unsigned)value : (unsigned)value;
    if (value < 0)
        *at++ = '-';
    do
        digits[n++] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    while (n > 0)
        *at++ = digits[--n];
    *at = 0;
    return at;
}

/* "<prefix><first><separator><second>" */
void pp_two_ints(char *text, const char *prefix, int first, const char *separator, int second)
{
    put_int(pp_put_text(put_int(pp_put_text(text, prefix), first), separator), second);
}
