/*
 * kiloml_logmel.c - integer log-mel front end (see kiloml_logmel.h; the step-by-step
 * specification with the bound of every intermediate value is kiloml.ops.logmel).
 */
#include "kiloml_logmel.h"

#include "kl_fixed.h"

#define KL_HALF_FFT (KILOML_LOGMEL_N_FFT / 2)
#define KL_QUARTER_FFT (KILOML_LOGMEL_N_FFT / 4)
#define KL_NORM_BITS 29        /* |frame| <= 2^29 after block normalisation */
#define KL_TWIDDLE_BITS 30     /* Q30 twiddles */
#define KL_WINDOW_BITS 30      /* Q30 window */
#define KL_POWER_SHIFT 12      /* power spectrum scaled by 2^-12 before the mel sums */
#define KL_LOG2_FRAC_BITS 16   /* Q16 log2 */
#define KL_LN2_Q30 744261118   /* round(2^30 ln 2) */
/* log2 E = log2 mel + 2 shift + FFT_BITS - LOG2_OFFSET: windowed samples in Q60 (squared:
 * 120), the power shift, Q15 mel weights. */
#define KL_LOG2_OFFSET (2 * (30 + KL_WINDOW_BITS) - KL_POWER_SHIFT + 15)

/* floor(log2 x) for x > 0. */
static int kl_floor_log2_u64(uint64_t x)
{
    int lead = 0;
    int step;
    for (step = 32; step > 0; step >>= 1) {
        if ((x >> step) != 0u) {
            x >>= step;
            lead += step;
        }
    }
    return lead;
}

/* Q30 window weight of sample n (2^30 = 1.0); the table holds the first half. */
static int32_t kl_window_q30(int n)
{
#if KILOML_LOGMEL_WINDOWED
    return kl_logmel_window_q30[n < (KILOML_LOGMEL_WIN_LENGTH + 1) / 2
                                    ? n : KILOML_LOGMEL_WIN_LENGTH - 1 - n];
#else
    (void)n;
    return (int32_t)1 << KL_WINDOW_BITS;
#endif
}

/* Q30 cos and sin of 2 pi k / N for 0 <= k <= N/2, from the quarter-wave sine table. */
static void kl_cos_sin_q30(int k, int32_t *cos_q30, int32_t *sin_q30)
{
    if (k <= KL_QUARTER_FFT) {
        *cos_q30 = kl_logmel_sin_q30[KL_QUARTER_FFT - k];
        *sin_q30 = kl_logmel_sin_q30[k];
    } else {
        *cos_q30 = -kl_logmel_sin_q30[k - KL_QUARTER_FFT];
        *sin_q30 = kl_logmel_sin_q30[KL_HALF_FFT - k];
    }
}

/* Pre-emphasis into fft[0..WIN-1] (zero past n_valid); returns max |e * window|. */
static int64_t kl_emphasise(const int16_t *pcm, int n_valid, int16_t previous, int32_t *fft)
{
    int64_t peak = 0;
    int n;
    for (n = 0; n < KILOML_LOGMEL_WIN_LENGTH; n++) {
        int32_t e = 0;
        int64_t v;
        if (n < n_valid) {
            int32_t before = n == 0 ? previous : pcm[n - 1];
            e = (int32_t)pcm[n] * 32768 - KILOML_LOGMEL_PRE_EMPHASIS_Q15 * before;
        }
        fft[n] = e;
        v = (int64_t)e * kl_window_q30(n);
        v = v < 0 ? -v : v;
        peak = v > peak ? v : peak;
    }
    return peak;
}

/* In-place N/2-point complex FFT of interleaved (re, im) int32 data, halved at every stage. */
static void kl_complex_fft(int32_t *z)
{
    int i;
    int j = 0;
    int half;
    for (i = 1; i < KL_HALF_FFT; i++) {
        int bit = KL_HALF_FFT >> 1;
        while ((j & bit) != 0) {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if (i < j) {
            int32_t re = z[2 * i];
            int32_t im = z[2 * i + 1];
            z[2 * i] = z[2 * j];
            z[2 * i + 1] = z[2 * j + 1];
            z[2 * j] = re;
            z[2 * j + 1] = im;
        }
    }
    for (half = 1; half < KL_HALF_FFT; half <<= 1) {
        int stride = KILOML_LOGMEL_N_FFT / (2 * half);
        for (j = 0; j < half; j++) {
            int32_t c;
            int32_t s;
            int start;
            kl_cos_sin_q30(j * stride, &c, &s);
            for (start = j; start < KL_HALF_FFT; start += 2 * half) {
                int32_t *a = z + 2 * start;
                int32_t *b = z + 2 * (start + half);
                int32_t t_re = (int32_t)kl_shift_round_s64(
                    (int64_t)b[0] * c + (int64_t)b[1] * s, KL_TWIDDLE_BITS);
                int32_t t_im = (int32_t)kl_shift_round_s64(
                    (int64_t)b[1] * c - (int64_t)b[0] * s, KL_TWIDDLE_BITS);
                int32_t a_re = a[0];
                int32_t a_im = a[1];
                a[0] = kl_shift_round_s32(a_re + t_re, 1);
                a[1] = kl_shift_round_s32(a_im + t_im, 1);
                b[0] = kl_shift_round_s32(a_re - t_re, 1);
                b[1] = kl_shift_round_s32(a_im - t_im, 1);
            }
        }
    }
}

/* Mel energies from the complex FFT z: the real-FFT split, the power and the Q15 weights of
 * every bin FIRST_BIN..LAST_BIN, into mel[0..N_MELS] (the last slot is a spill). */
static void kl_mel_energies(const int32_t *z, int64_t *mel)
{
    const int64_t one = (int64_t)1 << KL_TWIDDLE_BITS;
    int k;
    for (k = 0; k <= KILOML_LOGMEL_N_MELS; k++) {
        mel[k] = 0;
    }
    for (k = KILOML_LOGMEL_FIRST_BIN; k <= KILOML_LOGMEL_LAST_BIN; k++) {
        int a = 2 * (k & (KL_HALF_FFT - 1));
        int b = 2 * ((KL_HALF_FFT - k) & (KL_HALF_FFT - 1));
        int i = k - KILOML_LOGMEL_FIRST_BIN;
        int filter = kl_logmel_mel_filter[i];
        int32_t s_re = z[a] + z[b];
        int32_t s_im = z[a + 1] - z[b + 1];
        int32_t d_re = z[a] - z[b];
        int32_t d_im = z[a + 1] + z[b + 1];
        int32_t c;
        int32_t s;
        int64_t x_re;
        int64_t x_im;
        int64_t power;
        kl_cos_sin_q30(k, &c, &s);
        x_re = kl_shift_round_s64(s_re * one + (int64_t)c * d_im - (int64_t)s * d_re,
                                  KL_TWIDDLE_BITS + 2);
        x_im = kl_shift_round_s64(s_im * one - (int64_t)c * d_re - (int64_t)s * d_im,
                                  KL_TWIDDLE_BITS + 2);
        power = kl_shift_round_s64(x_re * x_re + x_im * x_im, KL_POWER_SHIFT);
        mel[filter] += (int64_t)kl_logmel_mel_weight_q15[2 * i] * power;
        mel[filter + 1] += (int64_t)kl_logmel_mel_weight_q15[2 * i + 1] * power;
    }
}

/* log2(x) in Q16 for 0 < x < 2^61: leading one, then the table interpolated on 16 bits. */
static int64_t kl_log2_q16(int64_t x)
{
    int lead = kl_floor_log2_u64((uint64_t)x);
    uint64_t r = (uint64_t)x << (62 - lead);
    int index = (int)(r >> (62 - KILOML_LOGMEL_LOG2_TABLE_BITS)) &
                ((1 << KILOML_LOGMEL_LOG2_TABLE_BITS) - 1);
    int64_t frac = (int64_t)((r >> (62 - KILOML_LOGMEL_LOG2_TABLE_BITS - KL_LOG2_FRAC_BITS)) &
                             0xFFFFu);
    int32_t lo = kl_logmel_log2_q16[index];
    int32_t hi = kl_logmel_log2_q16[index + 1];
    return (int64_t)lead * ((int32_t)1 << KL_LOG2_FRAC_BITS) + lo +
           kl_shift_round_s64((hi - lo) * frac, KL_LOG2_FRAC_BITS);
}

int kiloml_logmel_num_frames(int n_samples)
{
    if (n_samples <= KILOML_LOGMEL_WIN_LENGTH) {
        return 1;
    }
    return 1 + (n_samples - KILOML_LOGMEL_WIN_LENGTH + KILOML_LOGMEL_HOP_LENGTH - 1) /
                   KILOML_LOGMEL_HOP_LENGTH;
}

void kiloml_logmel_frame(const int16_t *pcm, int n_valid, int16_t previous,
                         kiloml_logmel_work_t *work, int16_t *out)
{
    int32_t *fft = work->fft;
    int64_t peak = kl_emphasise(pcm, n_valid, previous, fft);
    int shift;
    int64_t offset;
    int n;
    if (peak == 0) {
        for (n = 0; n < KILOML_LOGMEL_N_MELS; n++) {
            out[n] = KILOML_LOGMEL_FLOOR_Q10;
        }
        return;
    }
    /* Block floating point: 2^28 <= max |v| * 2^-shift <= 2^29. */
    shift = kl_floor_log2_u64((uint64_t)peak) + 1 - KL_NORM_BITS;
    for (n = 0; n < KILOML_LOGMEL_WIN_LENGTH; n++) {
        fft[n] = (int32_t)kl_shift_round_s64((int64_t)fft[n] * kl_window_q30(n), shift);
    }
    for (; n < KILOML_LOGMEL_N_FFT; n++) {
        fft[n] = 0;
    }
    kl_complex_fft(fft);
    kl_mel_energies(fft, work->mel);
    offset = (int64_t)(2 * shift + KILOML_LOGMEL_FFT_BITS - KL_LOG2_OFFSET) *
             ((int32_t)1 << KL_LOG2_FRAC_BITS);
    for (n = 0; n < KILOML_LOGMEL_N_MELS; n++) {
        int64_t ln = KILOML_LOGMEL_FLOOR_Q10;
        if (work->mel[n] > 0) {
            ln = kl_shift_round_s64((kl_log2_q16(work->mel[n]) + offset) * KL_LN2_Q30,
                                    30 + KL_LOG2_FRAC_BITS - KILOML_LOGMEL_OUT_FRAC_BITS);
            ln = ln < KILOML_LOGMEL_FLOOR_Q10 ? KILOML_LOGMEL_FLOOR_Q10 : ln;
        }
        out[n] = kl_sat16(ln);
    }
}

int kiloml_logmel(const int16_t *pcm, int n_samples, kiloml_logmel_work_t *work,
                  int16_t *features)
{
    int frames;
    int f;
    if (n_samples < 1) {
        return 0;
    }
    frames = kiloml_logmel_num_frames(n_samples);
    for (f = 0; f < frames; f++) {
        int start = f * KILOML_LOGMEL_HOP_LENGTH;
        int valid = n_samples - start;
        valid = valid < KILOML_LOGMEL_WIN_LENGTH ? valid : KILOML_LOGMEL_WIN_LENGTH;
        kiloml_logmel_frame(pcm + start, valid, start > 0 ? pcm[start - 1] : 0, work,
                            features + f * KILOML_LOGMEL_N_MELS);
    }
    return frames;
}
