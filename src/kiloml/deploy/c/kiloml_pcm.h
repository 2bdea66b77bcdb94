/*
 * kiloml_pcm.h - raw int16 PCM -> label on the device: the log-mel front end (kiloml_logmel.c)
 * followed by the exported model (model.c), for models trained on audio.
 *
 * kiloml_predict_pcm runs kiloml_logmel on the signal (int16 Q10 log-mel features, written to
 * the caller's features buffer), converts them in place to the model's input format
 * Q(KILOML_INPUT_FRAC_BITS) with
 *     x = sat16(shift_round(v, KILOML_PCM_INPUT_SHIFT)),  KILOML_PCM_INPUT_SHIFT = 10 - Fin
 * (a right shift rounding half up when positive, an exact left shift saturated to int16 when
 * negative), then runs kiloml_predict. Numpy twin (the specification, integer for integer):
 * kiloml.ir.pcm.simulate_pcm.
 *
 * The model runs KILOML_STEPS steps, so the signal must give exactly that many frames; the
 * training clips were one second (KILOML_PCM_SAMPLES samples, centred and zero-padded or
 * cropped), so pass one second of audio at KILOML_PCM_SAMPLE_RATE.
 *
 * RAM (all caller-owned, contents need no initialisation, no heap, no globals written):
 * kiloml_logmel_work_t (KILOML_LOGMEL_WORK_BYTES), kiloml_scratch_t (KILOML_SCRATCH_BYTES),
 * int16 features[KILOML_PCM_FEATURES_SIZE] (KILOML_PCM_FEATURES_BYTES) and int32
 * logits[KILOML_NUM_CLASSES]; KILOML_PCM_RAM_BYTES is their sum (stack not included). The
 * front-end tables (kiloml_logmel_tables.h) are written by kiloml export for the run's rate.
 */
#ifndef KILOML_PCM_H
#define KILOML_PCM_H

#include <stdint.h>

#include "kiloml_logmel.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KILOML_PCM_SAMPLE_RATE KILOML_LOGMEL_SAMPLE_RATE
/* One second: the clip length of training (gives KILOML_STEPS frames). */
#define KILOML_PCM_SAMPLES KILOML_LOGMEL_SAMPLE_RATE
/* Right shift (negative: left) from the front end's Q10 to the model's input format. */
#define KILOML_PCM_INPUT_SHIFT (KILOML_LOGMEL_OUT_FRAC_BITS - KILOML_INPUT_FRAC_BITS)
#define KILOML_PCM_FEATURES_SIZE (KILOML_STEPS * KILOML_INPUT_SIZE)
#define KILOML_PCM_FEATURES_BYTES (2 * KILOML_PCM_FEATURES_SIZE)
#define KILOML_LOGMEL_WORK_BYTES (4 * KILOML_LOGMEL_N_FFT + 8 * (KILOML_LOGMEL_N_MELS + 1))
#define KILOML_PCM_RAM_BYTES (KILOML_LOGMEL_WORK_BYTES + KILOML_SCRATCH_BYTES + \
                              KILOML_PCM_FEATURES_BYTES + 4 * KILOML_NUM_CLASSES)

/*
 * Classify n_samples of int16 PCM: writes features[0 .. KILOML_PCM_FEATURES_SIZE-1] (the
 * model input, frame-major, in Q(KILOML_INPUT_FRAC_BITS)) and logits[0 .. NUM_CLASSES-1]
 * (Q(KILOML_LOGITS_FRAC_BITS)); returns the arg-max class. Returns -1 and writes nothing when
 * n_samples does not give exactly KILOML_STEPS frames.
 */
int kiloml_predict_pcm(const int16_t *pcm, int n_samples, kiloml_logmel_work_t *work,
                       kiloml_scratch_t *scratch, int16_t *features, int32_t *logits);

#ifdef __cplusplus
}
#endif

#endif /* KILOML_PCM_H */
