/*
 * kiloml_pcm.c - raw int16 PCM -> label: kiloml_logmel, Q10 -> model input format,
 * kiloml_predict. See kiloml_pcm.h; numpy twin: kiloml.ir.pcm.
 */
#include "kiloml_pcm.h"

#include "kl_fixed.h"

/* The front end must give one model input per frame, and the work size must be as documented. */
typedef char kiloml_pcm_features_check[KILOML_LOGMEL_N_MELS == KILOML_INPUT_SIZE ? 1 : -1];
typedef char kiloml_pcm_work_check[sizeof(kiloml_logmel_work_t) == KILOML_LOGMEL_WORK_BYTES
                                   ? 1 : -1];

int kiloml_predict_pcm(const int16_t *pcm, int n_samples, kiloml_logmel_work_t *work,
                       kiloml_scratch_t *scratch, int16_t *features, int32_t *logits)
{
    int i;
    if (n_samples < 1 || kiloml_logmel_num_frames(n_samples) != KILOML_STEPS) {
        return -1;
    }
    kiloml_logmel(pcm, n_samples, work, features);
#if KILOML_PCM_INPUT_SHIFT != 0
    for (i = 0; i < KILOML_PCM_FEATURES_SIZE; i++) {
        features[i] = kl_sat16(kl_shift_round_s64(features[i], KILOML_PCM_INPUT_SHIFT));
    }
#else
    (void)i;
#endif
    return kiloml_predict(features, scratch, logits);
}
