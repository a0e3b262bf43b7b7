/* model_hf_keys: which keys of a Hugging Face config.json fsdpsim reads, accepts unread, or
 * refuses.
 *
 * A config.json written by save_pretrained carries many keys that do not change what a training
 * step costs: tokenizer ids, generation settings, dtype and version stamps, quantization and
 * attention-implementation bookkeeping (transformers' PretrainedConfig.__init__ and to_dict in
 * src/transformers/configuration_utils.py write them for every model). Those are accepted; the
 * less usual ones are listed once in a note. A key close to one fsdpsim reads (a typo) is refused
 * with a did-you-mean, and any other key is refused naming it: it might change the model, and a
 * silent guess would make the estimate wrong without a word. Cost: one pass over the keys, an edit
 * distance per known key (a few hundred short strings), once per model load. */
#include "model.h"

#include "../util/cfg.h"

#include <string.h>

/* Keys no builder reads because they do not change parameters, FLOPs, bytes or kernels of a
 * training step in fsdpsim's model. Two tiers: the attributes the supported configuration classes
 * document (transformers' configuration_<type>.py and the PretrainedConfig attributes every
 * config.json of them carries) are accepted silently, so that the shipped files and plain
 * downloads print nothing; everything else here (save_pretrained's and the Hub's bookkeeping,
 * quantization, generation settings, extra tokenizer ids) is accepted and named in the note, so
 * that the user sees what was skipped. */
static const char *const hf_standard[] = {
    "_name_or_path", "architectures", "transformers_version", "torch_dtype", "auto_map",
    "bos_token_id", "eos_token_id", "pad_token_id", "tokenizer_class", "use_cache", "output_past",
    "task_specific_params", "id2label", "label2id", "prefix", "model_name",
    "gradient_checkpointing", "max_length", "do_sample", "temperature", "top_p", "pretraining_tp",
    /* numerics and initialisation: same kernels whatever the value */
    "initializer_range", "initializer_factor", "layer_norm_epsilon", "layer_norm_eps",
    "rms_norm_eps", "rope_theta", "rope_scaling", "rotary_emb_base", "partial_rotary_factor",
    "original_max_position_embeddings", "scale_attn_weights", "scale_attn_by_inverse_layer_idx",
    "reorder_and_upcast_attn", "apply_residual_connection_post_layernorm", "query_pre_attn_scalar",
    "attn_logit_softcapping", "hidden_act", "hidden_activation", "cache_implementation",
    "use_mrope", "tie_embeddings",
    /* MoE training-loss settings: the auxiliary load-balancing loss is a few kernels on s x E
     * router logits; routing is modelled balanced whatever they say */
    "router_aux_loss_coef", "output_router_logits", "router_jitter_noise", "norm_topk_prob",
    /* T5: bucket range, dropout rate, the encoder-decoder flag every T5 config carries */
    "relative_attention_max_distance", "dropout_rate", "is_encoder_decoder",
    "decoder_start_token_id", "n_positions", "output_past",
    /* BERT's and ViT's heads that the pretraining model does not build */
    "classifier_dropout", "encoder_stride", "layer_norm_eps",
    /* dropout probabilities: fsdpsim charges GPT-2's dropout kernels whatever p is, and HF's
     * Llama-family decoders run none */
    "attention_dropout", "attn_pdrop", "embd_pdrop", "resid_pdrop", "hidden_dropout",
    "hidden_dropout_prob", "attention_probs_dropout_prob",
    /* GPT-2's sequence-summary head (not part of GPT2LMHeadModel) */
    "summary_activation", "summary_first_dropout", "summary_proj_to_labels", "summary_type",
    "summary_use_proj",
    /* positions beyond what a sample uses cost nothing but GPT-2's table (read as n_positions) */
    "n_ctx", "max_sequence_length", "max_position_embeddings",
    /* Gemma 2 writes the window twice; the builder reads sliding_window */
    "sliding_window_size", NULL};

static const char *const hf_bookkeeping[] = {
    "_commit_hash", "_attn_implementation_autoset", "_attn_implementation", "attn_implementation",
    "_flash_attn_2_enabled", "quantization_config", "custom_pipelines", "finetuning_task",
    "problem_type", "num_labels", "dtype", "use_bfloat16", "torchscript", "return_dict",
    "output_hidden_states", "output_attentions", "tf_legacy_loss", "pruned_heads",
    "chunk_size_feed_forward", "is_decoder", "add_cross_attention", "cross_attention_hidden_size",
    "tie_encoder_decoder", "model_name_or_path", "keys_to_ignore_at_inference", "embd_dropout",
    /* tokenizer */
    "sep_token_id", "unk_token_id", "decoder_start_token_id", "forced_bos_token_id",
    "forced_eos_token_id", "n_special", "vocab_file",
    /* generation settings */
    "min_length", "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty", "top_k",
    "typical_p", "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
    "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences", "output_scores",
    "return_dict_in_generate", "remove_invalid_values", "exponential_decay_length_penalty",
    "suppress_tokens", "begin_suppress_tokens", NULL};

/* Every key some builder reads (model_hf.c), for did-you-mean. */
static const char *const hf_read[] = {"model_type",
                                      "hidden_size",
                                      "num_hidden_layers",
                                      "num_attention_heads",
                                      "num_key_value_heads",
                                      "intermediate_size",
                                      "vocab_size",
                                      "head_dim",
                                      "tie_word_embeddings",
                                      "attention_bias",
                                      "mlp_bias",
                                      "n_embd",
                                      "n_layer",
                                      "n_head",
                                      "n_inner",
                                      "n_positions",
                                      "sliding_window",
                                      "use_sliding_window",
                                      "max_window_layers",
                                      "final_logit_softcapping",
                                      "rotary_pct",
                                      "use_parallel_residual",
                                      "parallel_attn",
                                      "multi_query",
                                      "new_decoder_architecture",
                                      "num_kv_heads",
                                      "bias",
                                      "alibi",
                                      "ffn_hidden_size",
                                      "hidden_act",
                                      "fsdpsim",
                                      "torch_dtype",
                                      "type_vocab_size",
                                      "position_embedding_type",
                                      "image_size",
                                      "patch_size",
                                      "num_channels",
                                      "qkv_bias",
                                      "num_local_experts",
                                      "num_experts_per_tok",
                                      "num_experts",
                                      "moe_intermediate_size",
                                      "shared_expert_intermediate_size",
                                      "decoder_sparse_step",
                                      "mlp_only_layers",
                                      "d_model",
                                      "d_kv",
                                      "d_ff",
                                      "num_layers",
                                      "num_decoder_layers",
                                      "num_heads",
                                      "relative_attention_num_buckets",
                                      "feed_forward_proj",
                                      NULL};

bool model_hf_check_keys(Model *m, void *cfg_root, GError **error)
{
    CfgObj *root = cfg_root;
    GString *noted = g_string_new(NULL);
    bool ok = true;
    for (const cJSON *it = root->obj->child; it && ok; it = it->next) {
        const char *key = it->string;
        if (g_hash_table_contains(root->seen, key) ||
            g_strv_contains((const char *const *)hf_standard, key))
            continue;
        if (g_strv_contains((const char *const *)hf_bookkeeping, key)) {
            g_string_append_printf(noted, "%s%s", noted->len ? ", " : "", key);
            continue;
        }
        if (g_strv_contains((const char *const *)hf_read, key)) {
            /* Mixtral's num_local_experts in a llama file: the model would be another one */
            cfg_set_error(error, root->file, root->path, key,
                          "a setting of other model types, which model_type \"%s\" does not "
                          "have; expected the model_type of the architecture it comes from, or "
                          "no such key",
                          m->model_type);
            ok = false;
            break;
        }
        const char *close = cfg_closest(key, hf_read);
        if (!close)
            close = cfg_closest(key, hf_standard);
        if (!close)
            close = cfg_closest(key, hf_bookkeeping);
        if (close)
            cfg_set_error(error, root->file, root->path, key, "unknown key; did you mean '%s'?",
                          close);
        else
            cfg_set_error(error, root->file, root->path, key,
                          "unknown key for model_type \"%s\": fsdpsim cannot tell whether it "
                          "changes the model's cost, so it does not guess; remove the key if it "
                          "does not (and report it, so that it can be listed), or report it as a "
                          "setting to model",
                          m->model_type);
        ok = false;
    }
    if (ok && noted->len)
        m->note = g_strdup_printf("%s: keys that do not change the cost, not read: %s", root->file,
                                  noted->str);
    g_string_free(noted, TRUE);
    return ok;
}
