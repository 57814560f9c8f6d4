/* LOQA's Coin Game rollout, one episode at a time (loqa/native.py builds and calls this file).

   The same episodes as loqa/rollout.py's play_block: the learner (seat 0) and its opponent (seat 1),
   both POLA-style GRU actors (networks.py PolaGRU), sample actions as argmax(softmax(logits) / q) from
   the pre-drawn Exp(1) noise q (epsilon-greedy from pre-drawn draws), and the env steps with the
   tables of common/envs/coin_game.py (move, free-cell rank, outcomes, observations). After the
   episode, the opponent's actor runs one more step on h_T and its GRU critic over h_0..h_T (obs (+)
   t * time_scale): the shaping term's op_logits and op_q.

   Why C: at the paper's settings each episode has its own opponent, so a batched time step streams
   every opponent's weights from memory for one matrix-vector product each. Here the loop order is
   episode-outer, time-inner: an episode's two actors stay in the core's cache for all its steps.
   Episodes are independent, so threads split them with identical results for any thread count.
   Matrix-vector products sum in a different order than PyTorch's, so logits agree to float
   rounding; tests/loqa/test_native_rollout.py checks the episodes against the PyTorch loop. */

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef LOCKSTEP
#define LOCKSTEP 8 /* episodes that step together (play_group) */
#endif

/* One GRU network's parameters: pre.0, [pre.1], input_gates, hidden_gates, head (weight, bias),
   each either the agent's own (stride 0) or stacked [U, ...] (stride = one agent's numel). */
typedef struct {
    const float *w[5], *b[5];
    int64_t w_stride[5], b_stride[5];
    int in_dim, hidden, out_dim, pre_layers;
} Net;

typedef struct {
    int batch, steps, obs_dim, num_actions, num_cells, group;
    Net own_actor, op_actor, op_critic;
    int with_outputs;
    float time_scale;
    const int64_t *op_index; /* [B / group] opponent of each group of episodes */
    const int64_t *player_cells, *coin_cell, *coin_owner; /* reset state [B, 2], [B], [B] */
    const int64_t *respawns;                               /* [T, B] */
    const int64_t *move_table, *rank_table;
    const float *reward_table, *own_table, *other_table; /* [8, 2] */
    const float *obs_table;                              /* [2 n^3, 8 n] */
    const float *noise_q;                                /* [B, T, 2, A] */
    const uint8_t *explore;                              /* [B, T, 2] or NULL */
    const int64_t *uniform;                              /* [B, T, 2] */
    float *obs, *rewards, *own_pickups, *other_pickups, *op_logits, *op_q;
    int64_t *actions;
} Job;

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

static float sum8(__m256 v) {
    __m128 half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    half = _mm_add_ps(half, _mm_movehl_ps(half, half));
    return _mm_cvtss_f32(_mm_add_ss(half, _mm_movehdup_ps(half)));
}

/* y_g = W[out, in] x_g + b for `count` vectors x_g (stride xs) into y_g (stride ys): four rows of W
   at a time, two 8-lane accumulators per row (eight FMA chains hide the FMA latency; one x load serves
   four rows). The rows stay in L1 while they serve every x_g, so W is read from memory once for the
   group; each y entry is summed in the same order whatever `count` is. */
static void linear(const float *w, const float *b, const float *x, int xs, float *y, int ys,
                   int out, int in, int count) {
    int o = 0;
    for (; o + 4 <= out; o += 4) {
        const float *r = w + (int64_t)o * in;
        for (int g = 0; g < count; g++) {
            const float *xg = x + (int64_t)g * xs;
            __m256 acc[8];
            for (int k = 0; k < 8; k++) acc[k] = _mm256_setzero_ps();
            int i = 0;
            for (; i + 16 <= in; i += 16) {
                const __m256 x0 = _mm256_loadu_ps(xg + i), x1 = _mm256_loadu_ps(xg + i + 8);
                for (int k = 0; k < 4; k++) {
                    acc[2 * k] = _mm256_fmadd_ps(_mm256_loadu_ps(r + k * in + i), x0, acc[2 * k]);
                    acc[2 * k + 1] =
                        _mm256_fmadd_ps(_mm256_loadu_ps(r + k * in + i + 8), x1, acc[2 * k + 1]);
                }
            }
            for (int k = 0; k < 4; k++) {
                float total = sum8(_mm256_add_ps(acc[2 * k], acc[2 * k + 1]));
                for (int j = i; j < in; j++) total += r[k * in + j] * xg[j];
                y[(int64_t)g * ys + o + k] = total + b[o + k];
            }
        }
    }
    for (; o < out; o++)
        for (int g = 0; g < count; g++) {
            float total = 0.0f;
            for (int i = 0; i < in; i++) total += w[(int64_t)o * in + i] * x[(int64_t)g * xs + i];
            y[(int64_t)g * ys + o] = total + b[o];
        }
}

/* e^x for 8 lanes, within ~2 ulp (Cephes' expf polynomial): libm's scalar expf and tanhf cost more
   than a GRU step's matrix-vector products. */
static __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x); /* ln 2, high and low part */
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i scale = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
}

static __m256 sigmoid8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

/* tanh x = 1 - 2 / (e^2x + 1); near 0 (|x| < 1/8) its Taylor series, which keeps the relative error */
static __m256 tanh8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f), x2 = _mm256_mul_ps(x, x);
    const __m256 big = _mm256_sub_ps(
        one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(exp8(_mm256_add_ps(x, x)), one)));
    __m256 small = _mm256_fmadd_ps(x2, _mm256_set1_ps(-17.0f / 315.0f), _mm256_set1_ps(2.0f / 15.0f));
    small = _mm256_fmadd_ps(small, x2, _mm256_set1_ps(-1.0f / 3.0f));
    small = _mm256_fmadd_ps(_mm256_mul_ps(small, x2), x, x);
    const __m256 abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    return _mm256_blendv_ps(big, small, _mm256_cmp_ps(abs, _mm256_set1_ps(0.125f), _CMP_LT_OQ));
}

/* h = (1 - z) n + z h with r, z = sigmoid(gi + gh), n = tanh(gi_n + r gh_n): 8 lanes at a time. */
static int gates8(const float *gi, const float *gh, float *h, int H) {
    int i = 0;
    for (; i + 8 <= H; i += 8) {
        const __m256 reset =
            sigmoid8(_mm256_add_ps(_mm256_loadu_ps(gi + i), _mm256_loadu_ps(gh + i)));
        const __m256 update =
            sigmoid8(_mm256_add_ps(_mm256_loadu_ps(gi + H + i), _mm256_loadu_ps(gh + H + i)));
        const __m256 candidate = tanh8(_mm256_fmadd_ps(reset, _mm256_loadu_ps(gh + 2 * H + i),
                                                       _mm256_loadu_ps(gi + 2 * H + i)));
        const __m256 old = _mm256_loadu_ps(h + i);
        _mm256_storeu_ps(h + i, _mm256_fmadd_ps(update, _mm256_sub_ps(old, candidate), candidate));
    }
    return i; /* the lanes done; the scalar loop does the rest */
}
#else
static int gates8(const float *gi, const float *gh, float *h, int H) { return 0; }

/* y_g = W[out, in] x_g + b for `count` vectors (strides xs, ys): a product, then the bias. */
static void linear(const float *w, const float *b, const float *x, int xs, float *y, int ys,
                   int out, int in, int count) {
    for (int o = 0; o < out; o++)
        for (int g = 0; g < count; g++) {
            float total = 0.0f;
            for (int i = 0; i < in; i++) total += w[(int64_t)o * in + i] * x[(int64_t)g * xs + i];
            y[(int64_t)g * ys + o] = total + b[o];
        }
}
#endif

static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

static void pointers(const Net *net, int64_t who, const float *w[5], const float *b[5]) {
    for (int k = 0; k < 5; k++) {
        w[k] = net->w[k] ? net->w[k] + who * net->w_stride[k] : NULL;
        b[k] = net->b[k] ? net->b[k] + who * net->b_stride[k] : NULL;
    }
}

/* The part of a GRU step (networks.py PolaGRU.forward) that does not see the carry: pre-layers and
   input gates of agent `who` for `count` inputs x_g (stride xs) -> gi_g [3 H] (stride 3 H).
   scratch: 2 H count. */
static void gru_input(const Net *net, int64_t who, const float *x, int xs, float *gi, int count,
                      float *scratch) {
    const int H = net->hidden;
    const float *w[5], *b[5];
    pointers(net, who, w, b);
    float *a = scratch, *c = a + H * count;
    linear(w[0], b[0], x, xs, a, H, H, net->in_dim, count);
    for (int i = 0; i < H * count; i++) a[i] = a[i] > 0.0f ? a[i] : 0.0f;
    const float *input = a;
    if (net->pre_layers == 2) { /* the second pre-layer has no activation (POLA's cell) */
        linear(w[1], b[1], a, H, c, H, H, H, count);
        input = c;
    }
    linear(w[2], b[2], input, H, gi, 3 * H, 3 * H, H, count);
}

/* The rest: hidden gates on the carries h_g (stride hs, updated in place), the gate arithmetic and
   the head -> y_g (stride ys). scratch: 3 H count. */
static void gru_recur(const Net *net, int64_t who, const float *gi, float *h, int hs, float *y,
                      int ys, int count, float *gh) {
    const int H = net->hidden;
    const float *w[5], *b[5];
    pointers(net, who, w, b);
    linear(w[3], b[3], h, hs, gh, 3 * H, 3 * H, H, count);
    for (int g = 0; g < count; g++) {
        const float *gig = gi + 3 * H * g, *ghg = gh + 3 * H * g;
        float *hg = h + (int64_t)g * hs;
        for (int i = gates8(gig, ghg, hg, H); i < H; i++) {
            float reset = sigmoid(gig[i] + ghg[i]);
            float update = sigmoid(gig[H + i] + ghg[H + i]);
            float candidate = tanhf(gig[2 * H + i] + reset * ghg[2 * H + i]);
            hg[i] = (1.0f - update) * candidate + update * hg[i];
        }
    }
    linear(w[4], b[4], h, hs, y, ys, net->out_dim, H, count);
}

/* A whole GRU step for one input. scratch: 8 H. */
static void gru_step(const Net *net, int64_t who, const float *x, float *h, float *y,
                     float *scratch) {
    const int H = net->hidden;
    gru_input(net, who, x, 0, scratch, 1, scratch + 3 * H);
    gru_recur(net, who, scratch, h, H, y, 0, 1, scratch + 3 * H);
}

static void softmax(const float *x, float *p, int n) {
    float top = x[0], total = 0.0f;
    for (int i = 1; i < n; i++) top = x[i] > top ? x[i] : top;
    for (int i = 0; i < n; i++) total += (p[i] = expf(x[i] - top));
    for (int i = 0; i < n; i++) p[i] /= total;
}

static int64_t sample(const float *logits, const float *q, int n) {
    float p[16];
    softmax(logits, p, n);
    int64_t best = 0;
    float best_value = p[0] / q[0];
    for (int i = 1; i < n; i++)
        if (p[i] / q[i] > best_value) best = i, best_value = p[i] / q[i];
    return best; /* the first maximum, as torch.argmax */
}

/* Episodes first .. first + count - 1 (count <= LOCKSTEP), in lockstep: the learner's actor steps all
   of them at once (its weights are read once per step for the group), each opponent its own episode.
   own_gates [rows of obs_table, 3 H]: the learner's input gates of every state's seat-0 observation.
   scratch: see play_range; H the largest hidden size. */
static void play_group(const Job *job, const float *own_gates, int64_t first, int count,
                       float *scratch, int H) {
    const int T = job->steps, D = job->obs_dim, A = job->num_actions, n = job->num_cells;
    const int64_t B = job->batch, episode_floats = (int64_t)(T + 1) * 2 * D;
    float *own_h = scratch, *op_h = own_h + LOCKSTEP * H, *critic_h = op_h + LOCKSTEP * H;
    float *input = critic_h + H, *own_logits = input + D + 1, *gru = own_logits + LOCKSTEP * 16;
    const int Ho = job->own_actor.hidden;
    int64_t row[LOCKSTEP]; /* each episode's state: its row of obs_table and own_gates */
    memset(scratch, 0, sizeof(float) * 2 * LOCKSTEP * H); /* zero initial carries (authors' code) */
    int64_t cell0[LOCKSTEP], cell1[LOCKSTEP], coin[LOCKSTEP], owner[LOCKSTEP], opponent[LOCKSTEP];
    float *obs = job->obs + first * episode_floats; /* [count, T+1, 2, D] */
    for (int g = 0; g < count; g++) {
        const int64_t e = first + g;
        opponent[g] = job->op_index[e / job->group];
        cell0[g] = job->player_cells[2 * e], cell1[g] = job->player_cells[2 * e + 1];
        coin[g] = job->coin_cell[e], owner[g] = job->coin_owner[e];
        row[g] = ((cell0[g] * n + cell1[g]) * n + coin[g]) * 2 + owner[g];
        memcpy(obs + g * episode_floats, job->obs_table + row[g] * 2 * D, sizeof(float) * 2 * D);
    }
    for (int t = 0; t < T; t++) {
        const float *now = obs + (int64_t)t * 2 * D; /* episode g's h_t at now + g episode_floats */
        float *own_gi = gru + 3 * Ho * count; /* the learner's input gates: looked up, not computed */
        for (int g = 0; g < count; g++)
            memcpy(own_gi + 3 * Ho * g, own_gates + row[g] * 3 * Ho, sizeof(float) * 3 * Ho);
        gru_recur(&job->own_actor, 0, own_gi, own_h, H, own_logits, 16, count, gru);
        for (int g = 0; g < count; g++) {
            const int64_t e = first + g, at = (e * T + t) * 2;
            float *op_logits = job->op_logits + (e * (T + 1) + t) * A;
            gru_step(&job->op_actor, opponent[g], now + g * episode_floats + D, op_h + g * H,
                     op_logits, gru);
            int64_t act0 = sample(own_logits + 16 * g, job->noise_q + at * A, A);
            int64_t act1 = sample(op_logits, job->noise_q + (at + 1) * A, A);
            if (job->explore) {
                if (job->explore[at]) act0 = job->uniform[at];
                if (job->explore[at + 1]) act1 = job->uniform[at + 1];
            }
            job->actions[at] = act0, job->actions[at + 1] = act1;

            /* the env step: coin_game.make_step_function */
            const int64_t c0 = cell0[g] = job->move_table[cell0[g] * 4 + (act0 & 3)];
            const int64_t c1 = cell1[g] = job->move_table[cell1[g] * 4 + (act1 & 3)];
            const int64_t took0 = c0 == coin[g], took1 = c1 == coin[g];
            const int64_t outcome = took0 + 2 * took1 + 4 * owner[g];
            for (int seat = 0; seat < 2; seat++) {
                job->rewards[at + seat] = job->reward_table[outcome * 2 + seat];
                job->own_pickups[at + seat] = job->own_table[outcome * 2 + seat];
                job->other_pickups[at + seat] = job->other_table[outcome * 2 + seat];
            }
            if (took0 | took1) { /* coin_game.free_cell_from_draw */
                const int64_t low = c0 < c1 ? c0 : c1, high = c0 < c1 ? c1 : c0;
                const int64_t distinct = low != high;
                const int64_t k = job->rank_table[2 * job->respawns[t * B + e] + distinct];
                const int64_t cell = k + (k >= low);
                coin[g] = cell + ((cell >= high) & distinct);
                owner[g] ^= 1;
            }
            row[g] = ((c0 * n + c1) * n + coin[g]) * 2 + owner[g];
            memcpy(obs + g * episode_floats + (int64_t)(t + 1) * 2 * D,
                   job->obs_table + row[g] * 2 * D, sizeof(float) * 2 * D);
        }
    }
    if (!job->with_outputs) return;
    for (int g = 0; g < count; g++) { /* the opponent's actor on h_T, its critic over h_0..h_T */
        const int64_t e = first + g;
        const float *episode = obs + g * episode_floats;
        gru_step(&job->op_actor, opponent[g], episode + (int64_t)T * 2 * D + D, op_h + g * H,
                 job->op_logits + (e * (T + 1) + T) * A, gru);
        memset(critic_h, 0, sizeof(float) * H);
        for (int t = 0; t <= T; t++) { /* obs (+) t: the critic's input */
            memcpy(input, episode + (int64_t)t * 2 * D + D, sizeof(float) * D);
            input[D] = (float)t * job->time_scale;
            gru_step(&job->op_critic, opponent[g], input, critic_h, job->op_q + (e * (T + 1) + t) * A,
                     gru);
        }
    }
}

typedef struct {
    const Job *job;
    const float *own_gates;
    int64_t first, last;
} Range;

static void *play_range(void *arg) {
    const Range *range = arg;
    const Job *job = range->job;
    int H = job->own_actor.hidden;
    if (job->op_actor.hidden > H) H = job->op_actor.hidden;
    if (job->op_critic.hidden > H) H = job->op_critic.hidden;
    /* carries (2 LOCKSTEP + 1) H, the critic's input, logits LOCKSTEP x 16, gru_step's 8 H LOCKSTEP */
    float *scratch = malloc(sizeof(float) * ((10 * LOCKSTEP + 1) * H + job->obs_dim + 1 + 16 * LOCKSTEP));
    if (!scratch) return (void *)1;
    for (int64_t e = range->first; e < range->last; e += LOCKSTEP) {
        const int64_t left = range->last - e;
        play_group(job, range->own_gates, e, left < LOCKSTEP ? (int)left : LOCKSTEP, scratch, H);
    }
    free(scratch);
    return NULL;
}

/* Plays episodes 0..B-1 on `threads` threads; returns 0 on success. */
int loqa_coin_rollout(const Job *job, int threads) {
    const int64_t B = job->batch, n = job->num_cells, rows = 2 * n * n * n;
    const int H = job->own_actor.hidden;
    /* The learner's input gates depend on its observation only, one of obs_table's rows: computed
       once per state here (2 n^3 = 1458 states on the 3x3 grid), they leave each step only the
       hidden gates (and keep the learner's weights in the cache small). */
    float *own_gates = malloc(sizeof(float) * rows * 3 * H);
    float *scratch = malloc(sizeof(float) * rows * 2 * H);
    if (!own_gates || !scratch) {
        free(own_gates), free(scratch);
        return -2;
    }
    gru_input(&job->own_actor, 0, job->obs_table, 2 * job->obs_dim, own_gates, (int)rows, scratch);
    free(scratch);
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    if (threads > B) threads = (int)B;
    pthread_t ids[64];
    int started[64] = {0}, failed = 0;
    Range ranges[64];
    for (int i = 0; i < threads; i++) {
        ranges[i] = (Range){job, own_gates, B * i / threads, B * (i + 1) / threads};
        started[i] = i > 0 && pthread_create(&ids[i], NULL, play_range, &ranges[i]) == 0;
    }
    for (int i = 0; i < threads; i++) /* the main thread plays what no thread took */
        if (!started[i]) failed |= play_range(&ranges[i]) != NULL;
    for (int i = 1; i < threads; i++) {
        void *status = NULL;
        if (started[i]) pthread_join(ids[i], &status);
        failed |= status != NULL;
    }
    free(own_gates);
    return failed ? -2 : 0;
}
