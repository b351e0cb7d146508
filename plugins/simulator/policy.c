/*
 * plugins/simulator/policy.c: who decides what an agent does.
 *
 * Offline policies (seeded choice models; every draw from sim_rng(seed, phase, round,
 * agent, step)). Notation: W/E/Cr/Ch/Po = 1 when the agent has that archetype; m(i) =
 * taste . genres(i) / max_g taste_g in [0, 1], the item's match with the agent's tastes;
 * heard(i) = 1 when the agent heard of i; h = 1 when some heard-of title is still unwatched;
 * choices are drawn from softmax(u / T) over the options' utilities u.
 *
 *   action   u_rec = 0.5 + W + 0.6 E + 0.4 Cr + 0.5 h
 *            u_soc = 0.1 + Ch + Po + 0.15 min(unshared, 4)      (needs a friend or follower)
 *            u_none = 0.6                                           T = 0.5
 *   page     u_buy(k) = 4 m(i_k) + heard(i_k) (1.5 + 0.5 Ch) + 0.8 cos(i_k, recall)
 *                       - 0.15 k - 0.5 Cr                         (k = 0-based position)
 *            u_next = 2.2 + 0.5 Cr + 0.3 E - 0.4 step
 *            u_search = 1.2 + E + 0.5 Ch + 0.3 min(times heard, 3)   (h, once a visit)
 *            u_leave = 0.6 + 0.5 step - 0.8 W                      T = 0.35
 *            recall = the mean vector of the 5 memories retrieved at the visit's start.
 *            SEARCH asks for the most-mentioned heard-of unwatched title.
 *   feeling  liked when the true affinity (world) or the believed match reaches 0.5 (0.65
 *            for Critics) of the agent's best genre weight; a one-line template.
 *   social   P(post) ∝ 0.3 + Po (needs a follower and a liked watch or heard title),
 *            P(chat) ∝ 0.3 + Ch (needs a friend); the partner is the least recently
 *            contacted friend who is not watching (ties by draw; RecAgent's prompt asks to
 *            "chat with more different people"); hours from {0.5, 1} ({1, 2} for Chatters).
 *   interview  memories retrieved by the question's text vector, rendered as sentences,
 *            with the agent's recent watches, heard-of titles and top genres.
 *
 * The openai backend sends RecAgent-shaped prompts (profile, time, heard/watched lists,
 * retrieved memories, observation, then the action's instruction with its output tags) and
 * parses the reply: exactly one of the allowed tags must occur (an echo of the prompt, which
 * lists them all, is ambiguous and rejected); BUY needs an index on the page, SEARCH a
 * catalogue title, CHAT a friend's name, TIME any positive number of hours (RecAgent only
 * took integers). Unparsable: re-asked llm_retries times, then the offline policy answers
 * through rlab_llm_chat_offline (the registered "recagent.*" policy) and the decision is
 * marked "fallback". A failed request (unreachable, timeout, HTTP error, malformed reply:
 * the llm handle retried what is worth retrying already) falls back at once; after a batch
 * in which every request failed, the round's later decisions fall back without asking (the
 * next round asks again), so a dead server costs one batch of retries per round. Every failed
 * request is counted by kind for the round (sim_stats.llm_errors) and in s->trouble with the
 * first message of each kind; sim_step turns too many fallbacks into an error.
 */
#define SIM_INTERNAL
#include "sim.h"

#include "llm/llm.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HAS(ag, a) (((ag)->arch & SIM_ARCH(a)) ? 1.0 : 0.0)

static int softmax_draw(const double *u, int n, double T, rlab_rng *r)
{
    double mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (u[i] > mx)
            mx = u[i];
    double w[16], tot = 0.0;
    for (int i = 0; i < n; i++) {
        w[i] = isfinite(u[i]) ? exp((u[i] - mx) / T) : 0.0;
        tot += w[i];
    }
    double x = rlab_rng_double(r) * tot;
    for (int i = 0; i < n; i++) {
        if (x < w[i])
            return i;
        x -= w[i];
    }
    for (int i = n - 1; i >= 0; i--)
        if (w[i] > 0)
            return i;
    return 0;
}

static int phase_of(int type)
{
    switch (type) {
    case SIM_D_ACTION:
        return SIM_PH_ACTION;
    case SIM_D_PAGE:
        return SIM_PH_PAGE;
    case SIM_D_SOCIAL:
        return SIM_PH_SOCIAL;
    case SIM_D_FEEL:
        return SIM_PH_FEEL;
    default:
        return SIM_PH_INTERVIEW;
    }
}

/* The item an agent would post about: its latest liked watch, else its best heard title. */
static int32_t post_choice(const sim *s, int32_t a)
{
    const sim_agent *ag = &s->agents[a];
    for (int k = 1; k <= SIM_HIST; k++) {
        int32_t it = ag->watched[(ag->watched_pos - k + SIM_HIST) % SIM_HIST];
        if (it >= 0 && sim_affinity(s, a, it) >= 0.5f * s->amax[a])
            return it;
    }
    int32_t best = -1;
    int bn = 0;
    for (int i = 0; i < SIM_HIST; i++)
        if (ag->heard[i] >= 0 && ag->heard_n[i] > bn)
            best = ag->heard[i], bn = ag->heard_n[i];
    return best;
}

static float liked_threshold(const sim_agent *ag)
{
    return (ag->arch & SIM_ARCH(RLAB_ARCH_CRITIC)) ? 0.65f : 0.5f;
}

/* Compute the recall vector of a's visit (retrieval at its first step). */
static void visit_recall(sim *s, int32_t a)
{
    int idx[SIM_RETRIEVE_K];
    int k = sim_retrieve(s, a, NULL, SIM_RETRIEVE_K, idx);
    float *rv = s->recall + (size_t)a * SIM_DIM;
    memset(rv, 0, SIM_DIM * sizeof *rv);
    for (int i = 0; i < k; i++) {
        const float *v = sim_mem_vec(s, &s->agents[a].ltm[idx[i]]);
        for (int d = 0; d < SIM_DIM; d++)
            rv[d] += v[d];
    }
    float nn = 0.0f;
    for (int d = 0; d < SIM_DIM; d++)
        nn += rv[d] * rv[d];
    if (nn > 0.0f) {
        nn = 1.0f / sqrtf(nn);
        for (int d = 0; d < SIM_DIM; d++)
            rv[d] *= nn;
    }
}

void sim_policy(sim *s, sim_dec *d)
{
    int32_t a = d->agent;
    const sim_agent *ag = &s->agents[a];
    rlab_rng r;
    sim_rng(s, phase_of(d->type), s->round + 1, a, d->step, &r);
    double temp = s->cfg.temperature > 0 ? s->cfg.temperature : 1.0;
    d->by = SIM_BY_OFFLINE;
    d->target = -1;
    d->hours = 0.0f;
    switch (d->type) {
    case SIM_D_ACTION: {
        const int32_t *x;
        int social = sim_followees(s, a, &x) > 0 || sim_followers(s, a, &x) > 0;
        double u[3];
        u[0] = 0.5 + HAS(ag, RLAB_ARCH_WATCHER) + 0.6 * HAS(ag, RLAB_ARCH_EXPLORER) +
               0.4 * HAS(ag, RLAB_ARCH_CRITIC) + (sim_best_heard(s, a) >= 0 ? 0.5 : 0.0);
        u[1] = social ? 0.1 + HAS(ag, RLAB_ARCH_CHATTER) + HAS(ag, RLAB_ARCH_POSTER) +
                            0.15 * (ag->unshared < 4 ? ag->unshared : 4)
                      : -(double)INFINITY;
        u[2] = 0.6;
        d->choice = softmax_draw(u, 3, 0.5 * temp, &r);
        break;
    }
    case SIM_D_PAGE: {
        if (d->step == 0)
            visit_recall(s, a);
        const float *rv = s->recall + (size_t)a * SIM_DIM;
        double u[SIM_MAX_PAGE + 3];
        int np = d->npage;
        for (int k = 0; k < np; k++) {
            int32_t it = d->page[k];
            double m = (double)(sim_affinity(s, a, it) / s->amax[a]);
            int hi = sim_heard_index(ag, it);
            const float *iv = s->item_vec + (size_t)it * SIM_DIM;
            double c = 0.0;
            for (int q = 0; q < SIM_DIM; q++)
                c += (double)iv[q] * (double)rv[q];
            u[k] = 4.0 * m + (hi >= 0 ? 1.5 + 0.5 * HAS(ag, RLAB_ARCH_CHATTER) : 0.0) + 0.8 * c -
                   0.15 * k - 0.5 * HAS(ag, RLAB_ARCH_CRITIC);
        }
        int32_t sh = d->searched ? -1 : sim_best_heard(s, a);
        int hn = 0;
        if (sh >= 0)
            hn = ag->heard_n[sim_heard_index(ag, sh)];
        u[np] = 2.2 + 0.5 * HAS(ag, RLAB_ARCH_CRITIC) + 0.3 * HAS(ag, RLAB_ARCH_EXPLORER) -
                0.4 * d->step;
        u[np + 1] = sh >= 0 ? 1.2 + HAS(ag, RLAB_ARCH_EXPLORER) + 0.5 * HAS(ag, RLAB_ARCH_CHATTER) +
                                  0.3 * (hn < 3 ? hn : 3)
                            : -(double)INFINITY;
        u[np + 2] = 0.6 + 0.5 * d->step - 0.8 * HAS(ag, RLAB_ARCH_WATCHER);
        int c = softmax_draw(u, np + 3, 0.35 * temp, &r);
        if (c < np)
            d->choice = c;
        else if (c == np)
            d->choice = SIM_P_NEXT;
        else if (c == np + 1) {
            d->choice = SIM_P_SEARCH;
            d->target = sh;
        } else
            d->choice = SIM_P_LEAVE;
        break;
    }
    case SIM_D_SOCIAL: {
        const int32_t *fo, *fr;
        int32_t nfo = sim_followees(s, a, &fo), nfr = sim_followers(s, a, &fr);
        int32_t pit = post_choice(s, a);
        double wp = nfr > 0 && pit >= 0 ? 0.3 + HAS(ag, RLAB_ARCH_POSTER) : 0.0;
        double wc = nfo > 0 ? 0.3 + HAS(ag, RLAB_ARCH_CHATTER) : 0.0;
        if (wp + wc <= 0.0) {
            d->choice = -1;
            break;
        }
        if (rlab_rng_double(&r) * (wp + wc) < wp) {
            d->choice = SIM_S_POST;
            d->target = pit;
            break;
        }
        d->choice = SIM_S_CHAT;
        float lo = 1e30f;
        int ties = 0; /* equal times compared exactly: they are copies of one vtime */
        for (int32_t k = 0; k < nfo; k++) {
            if (sim_watching(s, fo[k]))
                continue;
            float t = s->fo_last[s->fo_off[a] + k];
            if (t < lo) {
                lo = t, d->target = fo[k], ties = 1;
            } else if (!(t < lo) && !(t > lo) && rlab_rng_below(&r, (uint64_t)++ties) == 0) {
                d->target = fo[k];
            }
        }
        if (d->target < 0)
            d->target = fo[rlab_rng_below(&r, (uint64_t)nfo)]; /* all watching: blocked later */
        int ch = (ag->arch & SIM_ARCH(RLAB_ARCH_CHATTER)) != 0;
        d->hours = rlab_rng_below(&r, 2) ? (ch ? 2.0f : 1.0f) : (ch ? 1.0f : 0.5f);
        break;
    }
    case SIM_D_FEEL: {
        float aff = sim_true_affinity(s, a, d->item);
        float best = s->amax[a];
        if (s->world && ag->user >= 0) {
            const float *t = rlab_world_taste(s->world, ag->user, INT64_MAX);
            best = 0.0f;
            for (int32_t g = 0; g < s->G; g++)
                best = fmaxf(best, t[g]);
        }
        d->liked = aff >= liked_threshold(ag) * best;
        break;
    }
    default:
        break;
    }
}

/* ---- replies in the prompt's format --------------------------------------------------- */

void sim_policy_reply(sim *s, const sim_dec *d, char *buf, size_t n)
{
    const sim_agent *ag = &s->agents[d->agent];
    switch (d->type) {
    case SIM_D_ACTION:
        if (d->choice == SIM_A_REC)
            snprintf(buf, n, "[RECOMMENDER]:: %s enters the Recommender System.", ag->name);
        else if (d->choice == SIM_A_SOCIAL)
            snprintf(buf, n, "[SOCIAL]:: %s enters the Social Media.", ag->name);
        else
            snprintf(buf, n, "[NOTHING]:: %s does nothing.", ag->name);
        break;
    case SIM_D_PAGE:
        if (d->choice >= 0 && d->choice < d->npage)
            snprintf(buf, n, "[BUY]:: %d", d->choice + 1);
        else if (d->choice == SIM_P_NEXT)
            snprintf(buf, n, "[NEXT]:: %s views the next page.", ag->name);
        else if (d->choice == SIM_P_SEARCH)
            snprintf(buf, n, "[SEARCH]:: <%s>", sim_item_title(s, d->target));
        else
            snprintf(buf, n, "[LEAVE]:: %s leaves the recommender system.", ag->name);
        break;
    case SIM_D_SOCIAL:
        if (d->choice == SIM_S_CHAT)
            snprintf(buf, n, "[CHAT]:: %s\n[TIME]:: %g", s->agents[d->target].name,
                     (double)d->hours);
        else if (d->choice == SIM_S_POST)
            snprintf(buf, n, "[POST]:: Just watched <%s>. Highly recommended!",
                     sim_item_title(s, d->target));
        else
            snprintf(buf, n, "[NOTHING]:: %s scrolls and does nothing.", ag->name);
        break;
    case SIM_D_FEEL: {
        const char *g = sim_genre_name(s, s->item_topg[d->item]);
        if (d->liked)
            snprintf(buf, n, "[FEELING]:: I really enjoyed <%s>; %s is just my thing.",
                     sim_item_title(s, d->item), g);
        else
            snprintf(buf, n, "[FEELING]:: <%s> was not for me; too much %s for my taste.",
                     sim_item_title(s, d->item), g);
        break;
    }
    default: {
        char *ans = sim_offline_answer(s, d->agent, d->text ? d->text : "");
        snprintf(buf, n, "[SAY]:: %s", ans ? ans : "...");
        rlab_free(ans);
    }
    }
}

/* ---- prompts --------------------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) RLAB_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (!b->p)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (w < 0)
            return;
        if ((size_t)w < b->cap - b->len) {
            b->len += (size_t)w;
            return;
        }
        size_t cap = 2 * b->cap + (size_t)w;
        char *q = rlab_realloc(b->p, cap);
        if (!q) {
            rlab_free(b->p);
            b->p = NULL;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

static const char *const arch_desc[] = {
    "Watcher: chooses movies, watches them and gives feedback",
    "Explorer: searches for movies heard of and tries new things",
    "Critic: demanding, criticises the movies watched",
    "Chatter: likes private chats and trusts friends' recommendations",
    "Poster: enjoys publicly posting on social media"};

static void header(sim *s, int32_t a, sbuf *b, const float *qv)
{
    const sim_agent *ag = &s->agents[a];
    char prof[256];
    sim_profile_text(s, a, prof, sizeof prof);
    sb_printf(b, "Name: %s\nAge: %d\nGender: %s\nTraits: %s\nStatus: %s\nInterest:", ag->name,
              (int)ag->age, ag->gender, ag->traits, ag->status);
    const char *li = strstr(prof, "likes");
    sb_printf(b, "%s\nFeature:", li ? li + 5 : " movies");
    for (int k = 0; k < RLAB_WORLD_N_ARCHETYPES; k++)
        if (ag->arch & SIM_ARCH(k))
            sb_printf(b, " %s.", arch_desc[k]);
    double t = s->vtime;
    int day = (int)(t / 24.0);
    int hh = (int)fmod(t, 24.0), mm = (int)(fmod(t, 1.0) * 60.0);
    sb_printf(b, "\nIt is day %d, %02d:%02d.\n%s recently heard [", day + 1, hh, mm, ag->name);
    int first = 1;
    for (int i = 0; i < SIM_HIST; i++)
        if (ag->heard[i] >= 0) {
            sb_printf(b, "%s<%s>", first ? "" : ", ", sim_item_title(s, ag->heard[i]));
            first = 0;
        }
    sb_printf(b, "] on social media.\n%s recently watched [", ag->name);
    first = 1;
    for (int i = 0; i < SIM_HIST; i++)
        if (ag->watched[i] >= 0) {
            sb_printf(b, "%s<%s>", first ? "" : ", ", sim_item_title(s, ag->watched[i]));
            first = 0;
        }
    sb_printf(b, "] on recommender system.\nOther than that %s doesn't know any movies.\n",
              ag->name);
    int idx[SIM_RETRIEVE_K];
    int k = sim_retrieve(s, a, qv, SIM_RETRIEVE_K, idx);
    sb_printf(b, "Most recent observations:");
    for (int i = 0; i < k; i++) {
        char line[256];
        sim_memory_text(s, a, &ag->ltm[idx[i]], line, sizeof line);
        sb_printf(b, " %s", line);
    }
    for (int i = 0; i < ag->n_stm; i++) {
        char line[256];
        sim_memory_text(s, a, &ag->stm[i], line, sizeof line);
        sb_printf(b, " %s", line);
    }
    sb_printf(b, "\n");
}

char *sim_prompt_header(sim *s, int32_t a)
{
    sbuf b = {rlab_malloc(4096), 0, 4096};
    header(s, a, &b, NULL);
    return b.p;
}

char *sim_prompt(sim *s, const sim_dec *d)
{
    int32_t a = d->agent;
    const char *nm = s->agents[a].name;
    sbuf b = {rlab_malloc(4096), 0, 4096};
    float qv[SIM_DIM];
    const float *q = NULL;
    if (d->type == SIM_D_INTERVIEW && d->text) {
        sim_question_vec(s, d->text, qv);
        q = qv;
    }
    header(s, a, &b, q);
    switch (d->type) {
    case SIM_D_ACTION:
        sb_printf(&b,
                  "Observation: %s must take one of the actions below: (1) Enter the "
                  "Recommender System. If so, %s will be recommended some movies, from which "
                  "%s can watch some movies, or search for movies by himself or herself. (2) "
                  "Enter the Social Media. %s can chat with friends or publish a post to all "
                  "friends of %s. (3) Do Nothing.\n"
                  "All occurrences of movie names should be enclosed with <>.\n"
                  "What action would %s like to take? Respond in one line.\n"
                  "If %s wants to enter the Recommender System, write:\n"
                  " [RECOMMENDER]:: %s enters the Recommender System\n"
                  "If %s wants to enter the Social Media, write:\n"
                  " [SOCIAL]:: %s enters the Social Media\n"
                  "If %s wants to do nothing, write:\n [NOTHING]:: %s does nothing\n",
                  nm, nm, nm, nm, nm, nm, nm, nm, nm, nm, nm, nm);
        break;
    case SIM_D_PAGE:
        sb_printf(&b, "Observation: %s is browsing the recommender system. %s is recommended [", nm,
                  nm);
        for (int k = 0; k < d->npage; k++)
            sb_printf(&b, "%s%d. <%s>", k ? "; " : "", k + 1, sim_item_title(s, d->page[k]));
        sb_printf(&b,
                  "].\nAll occurrences of movie names should be enclosed with <>.\n"
                  "%s must choose one of the four actions below:\n"
                  "(1) Watch ONLY ONE movie from the list returned by the recommender system.\n"
                  "(2) See the next page.\n(3) Search for a specific item.\n"
                  "(4) Leave the recommender system.\n"
                  "If %s has recently heard about a particular movie on social media, %s might "
                  "want to search for that movie on the recommender system.\n"
                  "To watch a movie from the recommended list that matches %s's interests, "
                  "write:\n[BUY]:: ONLY ONE movie index (1 to %d)\n"
                  "To see the next page, write:\n[NEXT]:: %s views the next page.\n"
                  "To search for a specific item, write:\n[SEARCH]:: single, specific movie "
                  "name to search for.\n"
                  "To leave the recommender system, write:\n[LEAVE]:: %s leaves the "
                  "recommender system.\n",
                  nm, nm, nm, nm, d->npage, nm, nm);
        break;
    case SIM_D_SOCIAL: {
        const int32_t *fo;
        int32_t nfo = sim_followees(s, a, &fo);
        sb_printf(&b, "Observation: %s is going to social media. %s can chat with [", nm, nm);
        for (int32_t k = 0; k < nfo && k < 20; k++)
            sb_printf(&b, "%s%s", k ? ", " : "", s->agents[fo[k]].name);
        sb_printf(&b,
                  "] or post to all followers.\n"
                  "All occurrences of movie names should be enclosed with <>.\n"
                  "%s should chat with more different people.\n"
                  "If %s wants to chat, write:\n[CHAT]:: name of the friend\n"
                  "[TIME]:: hours of the chat (0.5, 1 or 2)\n"
                  "If %s wants to post, write:\n[POST]:: what %s posts\n",
                  nm, nm, nm, nm);
        break;
    }
    case SIM_D_FEEL:
        sb_printf(&b,
                  "Observation: %s has just finished watching <%s>. %s has not seen this "
                  "movie before.\nAll occurrences of movie names should be enclosed with <>.\n"
                  "Describe %s's feelings about the movie in one line, in the first person, "
                  "written as:\n[FEELING]:: the feeling\n",
                  nm, sim_item_title(s, d->item), nm, nm);
        break;
    default:
        sb_printf(&b,
                  "Observation: %s is being interviewed. The interviewer asks: %s\n"
                  "All occurrences of movie names should be enclosed with <>.\n"
                  "How would %s respond, from %s's memories? Answer in the first person, as %s "
                  "(\"I ...\"), and agree with the memories above. Write:\n[SAY]:: what %s "
                  "says\n",
                  nm, d->text ? d->text : "", nm, nm, nm, nm);
    }
    return b.p;
}

/* ---- parsing ------------------------------------------------------------------------------ */

/* Find "[tag]" (case-insensitive) in text; returns a pointer past it (and past "::" / ":"
 * and blanks) or NULL. */
static const char *find_tag(const char *text, const char *tag)
{
    size_t n = strlen(tag);
    for (const char *p = text; (p = strchr(p, '[')) != NULL; p++) {
        size_t i = 0;
        while (i < n && p[1 + i] && toupper((unsigned char)p[1 + i]) == tag[i])
            i++;
        if (i == n && p[1 + n] == ']') {
            const char *q = p + 2 + n;
            while (*q == ':' || *q == ' ' || *q == '\t')
                q++;
            return q;
        }
    }
    /* "SAY:" / "FEELING:" without brackets at a line start */
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        while (*p == ' ')
            p++;
        size_t i = 0;
        while (i < n && p[i] && toupper((unsigned char)p[i]) == tag[i])
            i++;
        if (i == n && p[n] == ':') {
            const char *q = p + n;
            while (*q == ':' || *q == ' ')
                q++;
            return q;
        }
    }
    return NULL;
}

/* The rest of the line after a tag, trimmed, into out. */
static void tag_line(const char *p, char *out, size_t n)
{
    size_t k = 0;
    while (p[k] && p[k] != '\n' && k + 1 < n) {
        out[k] = p[k];
        k++;
    }
    while (k > 0 && isspace((unsigned char)out[k - 1]))
        k--;
    out[k] = '\0';
}

static int32_t friend_by_name(const sim *s, int32_t a, const char *text)
{
    const int32_t *fo;
    int32_t nfo = sim_followees(s, a, &fo);
    int32_t best = -1;
    size_t bl = 0;
    for (int32_t k = 0; k < nfo; k++) {
        const char *nm = s->agents[fo[k]].name;
        size_t l = strlen(nm);
        char first[32];
        snprintf(first, sizeof first, "%s", nm);
        char *sp = strchr(first, ' ');
        if (strncasecmp(text, nm, l) == 0 && l > bl)
            best = fo[k], bl = l;
        else if (sp && best < 0) {
            *sp = '\0';
            if (strncasecmp(text, first, strlen(first)) == 0)
                best = fo[k];
        }
    }
    return best;
}

int sim_parse(sim *s, sim_dec *d, const char *text)
{
    char line[512];
    int32_t a = d->agent;
    d->target = -1;
    switch (d->type) {
    case SIM_D_ACTION: {
        const char *t[3] = {find_tag(text, "RECOMMENDER"), find_tag(text, "SOCIAL"),
                            find_tag(text, "NOTHING")};
        int c = -1, cnt = 0;
        for (int k = 0; k < 3; k++)
            if (t[k])
                c = k, cnt++;
        if (cnt != 1)
            return -1;
        if (c == SIM_A_SOCIAL) {
            const int32_t *x;
            if (sim_followees(s, a, &x) == 0 && sim_followers(s, a, &x) == 0)
                return -1;
        }
        d->choice = c;
        return 0;
    }
    case SIM_D_PAGE: {
        const char *t[4] = {find_tag(text, "BUY"), find_tag(text, "NEXT"), find_tag(text, "SEARCH"),
                            find_tag(text, "LEAVE")};
        int c = -1, cnt = 0;
        for (int k = 0; k < 4; k++)
            if (t[k])
                c = k, cnt++;
        if (cnt != 1)
            return -1;
        if (c == 0) {
            char *end;
            long k = strtol(t[0], &end, 10);
            if (end == t[0] || k < 1 || k > d->npage)
                return -1;
            d->choice = (int)k - 1;
        } else if (c == 1) {
            d->choice = SIM_P_NEXT;
        } else if (c == 2) {
            tag_line(t[2], line, sizeof line);
            int32_t it = sim_find_title(s, line);
            if (it < 0 || d->searched)
                return -1;
            d->choice = SIM_P_SEARCH;
            d->target = it;
        } else {
            d->choice = SIM_P_LEAVE;
        }
        return 0;
    }
    case SIM_D_SOCIAL: {
        const char *ch = find_tag(text, "CHAT"), *po = find_tag(text, "POST");
        if ((ch != NULL) == (po != NULL))
            return -1;
        if (ch) {
            tag_line(ch, line, sizeof line);
            int32_t b = friend_by_name(s, a, line);
            if (b < 0)
                return -1;
            const char *tm = find_tag(text, "TIME");
            double h = 1.0;
            if (tm) {
                char *end;
                h = strtod(tm, &end);
                if (end == tm || !(h > 0.0))
                    return -1;
                if (h > 8.0)
                    h = 8.0;
            }
            d->choice = SIM_S_CHAT;
            d->target = b;
            d->hours = (float)h;
        } else {
            tag_line(po, line, sizeof line);
            if (!line[0])
                return -1;
            int32_t it = sim_find_title(s, line);
            if (it < 0)
                it = post_choice(s, a);
            if (it < 0)
                return -1;
            const int32_t *x;
            if (sim_followers(s, a, &x) == 0)
                return -1;
            d->choice = SIM_S_POST;
            d->target = it;
            rlab_free(d->text);
            d->text = rlab_strdup(line);
        }
        return 0;
    }
    case SIM_D_FEEL: {
        const char *f = find_tag(text, "FEELING");
        if (!f)
            return -1;
        tag_line(f, line, sizeof line);
        if (!line[0])
            return -1;
        rlab_free(d->text);
        size_t n = strlen(line) + 16;
        d->text = rlab_malloc(n);
        if (d->text)
            snprintf(d->text, n, "[FEELING]:: %s", line);
        /* liked comes from the ground truth (the satisfaction the feeling reports) */
        sim_dec tmp = *d;
        tmp.text = NULL;
        sim_policy(s, &tmp);
        d->liked = tmp.liked;
        return 0;
    }
    default: {
        const char *f = find_tag(text, "SAY");
        if (!f)
            return -1;
        tag_line(f, line, sizeof line);
        if (!line[0])
            return -1;
        rlab_free(d->text);
        d->text = rlab_strdup(line);
        return 0;
    }
    }
}

/* ---- dispatch ------------------------------------------------------------------------------- */

static const char *task_of(int type)
{
    switch (type) {
    case SIM_D_ACTION:
        return "recagent.action";
    case SIM_D_PAGE:
        return "recagent.page";
    case SIM_D_SOCIAL:
        return "recagent.social";
    case SIM_D_FEEL:
        return "recagent.feeling";
    default:
        return "recagent.interview";
    }
}

/* The offline policy as an llm policy: answers in the prompt's tag format. */
static int llm_policy(const rlab_llm_req *req, rlab_rng *rng, rlab_llm_out *out, void *ud,
                      rlab_err *err)
{
    (void)rng;
    (void)err;
    sim *s = ud;
    sim_dec tmp = *(const sim_dec *)req->ctx;
    tmp.text = NULL;
    if (tmp.type == SIM_D_INTERVIEW)
        tmp.text = ((const sim_dec *)req->ctx)->text;
    else
        sim_policy(s, &tmp);
    char buf[1024];
    sim_policy_reply(s, &tmp, buf, sizeof buf);
    return rlab_llm_out_puts(out, buf);
}

int sim_register_policies(sim *s, rlab_llm *llm, rlab_err *err)
{
    return rlab_llm_register(llm, "recagent.*", llm_policy, s, err);
}

/* The kind of a failed request, from what core/llm reports (llm.h: messages start with
 * "llm: " and name what failed; http_status is the last HTTP status seen). */
static int error_kind(const rlab_llm_result *r)
{
    const char *e = r->error;
    if (r->http_status == 401 || r->http_status == 403)
        return SIM_LLM_AUTH;
    if (strncmp(e, "llm: timeout", 12) == 0)
        return SIM_LLM_TIMEOUT;
    if (strncmp(e, "llm: connection error", 21) == 0)
        return SIM_LLM_UNREACHABLE;
    if (strncmp(e, "llm: HTTP ", 10) == 0)
        return SIM_LLM_HTTP;
    if (r->status == RLAB_ENET)
        return SIM_LLM_PROTOCOL; /* malformed JSON, an error object, no choices, too large */
    return SIM_LLM_OTHER;
}

/* Count one failed request of `kind` in the round and in s->trouble; keep the first
 * message of its kind and of the round. */
static void note_error(sim *s, int kind, const char *msg)
{
    s->acc_llm_err[kind]++;
    s->trouble.n[kind]++;
    if (!s->trouble.first[kind][0])
        snprintf(s->trouble.first[kind], sizeof s->trouble.first[kind], "%s", msg);
    if (!s->llm_round_first[0])
        snprintf(s->llm_round_first, sizeof s->llm_round_first, "%s", msg);
}

/* The message for a reply that did not parse: the task and the start of the reply. */
static void note_unparsable(sim *s, const char *task, const char *text)
{
    char snip[96], msg[320];
    size_t k = 0;
    for (; text[k] && k + 4 < sizeof snip; k++)
        snip[k] = text[k] == '\n' || text[k] == '\r' ? ' ' : text[k];
    snip[k] = '\0';
    snprintf(msg, sizeof msg, "llm: unparsable reply to a %s prompt: '%s%s'", task, snip,
             text[k] ? "..." : "");
    note_error(s, SIM_LLM_UNPARSABLE, msg);
}

static const char sys_msg[] =
    "You are simulating a user of a movie recommender system and a social network. Stay in "
    "character and answer exactly in the output format requested.";
static const char retry_msg[] =
    "\nYour previous answer could not be parsed. Answer with exactly one of the tagged "
    "formats above and nothing else.";

/* The offline answer for d (its prompt was `prompt`), through the llm's offline registry
 * (the registered "recagent.*" policy), else the C policy; marked as a fallback. */
static void fallback_one(sim *s, sim_dec *d, const char *prompt)
{
    rlab_llm_msg mm[2] = {{"system", sys_msg}, {"user", prompt}};
    rlab_llm_req rq = {.task = task_of(d->type), .msgs = mm, .n_msgs = 2, .ctx = d};
    rlab_llm_result r1 = {0};
    rlab_err e = {0};
    int ok = rlab_llm_chat_offline(s->llm, &rq, &r1, &e) == RLAB_OK && r1.text &&
             sim_parse(s, d, r1.text) == 0;
    rlab_llm_result_clear(&r1);
    if (!ok) {
        if (d->type == SIM_D_INTERVIEW) {
            char *ans = sim_offline_answer(s, d->agent, d->text ? d->text : "");
            rlab_free(d->text);
            d->text = ans;
        } else {
            sim_policy(s, d);
        }
    }
    d->by = SIM_BY_FALLBACK;
    s->acc_llm_fallbacks++;
}

static void policy_part(sim *s, void *ctx, int32_t lo, int32_t hi, int tid)
{
    (void)tid;
    sim_dec *d = ctx;
    for (int32_t i = lo; i < hi; i++)
        sim_policy(s, &d[i]);
}

int sim_decide(sim *s, sim_dec *d, int n, rlab_err *err)
{
    if (n <= 0)
        return RLAB_OK;
    if (!s->llm || !s->cfg.use_llm) {
        /* over threads: a decision reads shared state and writes its own agent's (the
         * visit's recall, the access times of the memories it retrieved) */
        sim_par_for(s, n, s->par_min, policy_part, d);
        return RLAB_OK;
    }
    char **prompt = rlab_calloc((size_t)n, sizeof(char *));
    rlab_llm_msg *msgs = rlab_calloc((size_t)n * 2, sizeof(rlab_llm_msg));
    rlab_llm_req *reqs = rlab_calloc((size_t)n, sizeof(rlab_llm_req));
    rlab_llm_result *res = rlab_calloc((size_t)n, sizeof(rlab_llm_result));
    int *pend = rlab_calloc((size_t)n, sizeof(int));
    int rc = RLAB_OK;
    if (!prompt || !msgs || !reqs || !res || !pend) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto done;
    }
    /* pend[i]: 1 = ask (again), 2 = the request failed: fall back without re-asking */
    for (int i = 0; i < n; i++) {
        prompt[i] = sim_prompt(s, &d[i]);
        if (!prompt[i]) {
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
            goto done;
        }
        pend[i] = s->llm_down ? 2 : 1;
    }
    s->acc_llm_decisions += n;
    for (int attempt = 0; attempt <= s->cfg.llm_retries; attempt++) {
        int m = 0;
        int *map = rlab_malloc((size_t)n * sizeof(int));
        if (!map) {
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
            goto done;
        }
        for (int i = 0; i < n; i++) {
            if (pend[i] != 1)
                continue;
            if (attempt > 0) {
                size_t l = strlen(prompt[i]);
                char *p = rlab_realloc(prompt[i], l + sizeof retry_msg);
                if (p) {
                    memcpy(p + l, retry_msg, sizeof retry_msg);
                    prompt[i] = p;
                }
            }
            msgs[2 * m] = (rlab_llm_msg){"system", sys_msg};
            msgs[2 * m + 1] = (rlab_llm_msg){"user", prompt[i]};
            reqs[m] = (rlab_llm_req){.task = task_of(d[i].type),
                                     .msgs = &msgs[2 * m],
                                     .n_msgs = 2,
                                     .opts = {.temperature = 0.0, .max_tokens = 256},
                                     .ctx = &d[i]};
            map[m++] = i;
        }
        if (m == 0) {
            rlab_free(map);
            break;
        }
        rlab_err e = {0};
        int crc = rlab_llm_chat_many(s->llm, reqs, m, res, &e);
        s->acc_llm_calls += m;
        int failed = 0;
        for (int j = 0; j < m && crc != RLAB_ECANCELED; j++) {
            int i = map[j];
            if (res[j].status != RLAB_OK || !res[j].text) {
                failed++;
                note_error(s, res[j].status != RLAB_OK ? error_kind(&res[j]) : SIM_LLM_PROTOCOL,
                           res[j].status != RLAB_OK ? res[j].error : "llm: a reply without text");
                pend[i] = 2;
            } else if (sim_parse(s, &d[i], res[j].text) == 0) {
                d[i].by = SIM_BY_LLM;
                pend[i] = 0;
            } else {
                note_unparsable(s, task_of(d[i].type), res[j].text);
            }
        }
        if (failed == m)
            s->llm_down = 1;
        rlab_llm_results_clear(res, m);
        rlab_free(map);
        if (crc == RLAB_ECANCELED) {
            rc = rlab_errf(err, RLAB_ECANCELED, "%s", e.msg);
            goto done;
        }
    }
    /* what is still pending: the offline policy, through the llm's offline registry */
    for (int i = 0; i < n; i++)
        if (pend[i])
            fallback_one(s, &d[i], prompt[i]);
done:
    for (int i = 0; prompt && i < n; i++)
        rlab_free(prompt[i]);
    rlab_free(prompt), rlab_free(msgs), rlab_free(reqs), rlab_free(res), rlab_free(pend);
    return rc;
}

/* ---- pipelined decisions ------------------------------------------------------------------ */

/* Submit q's prompt for d (with the retry note after the first ask). */
static int ask_submit(sim *s, rlab_llm_pipe *p, sim_dec *d, sim_ask *q, int64_t tag, rlab_err *err)
{
    if (q->attempt > 0) {
        size_t l = strlen(q->prompt);
        char *np = rlab_realloc(q->prompt, l + sizeof retry_msg);
        if (np) {
            memcpy(np + l, retry_msg, sizeof retry_msg);
            q->prompt = np;
        }
    }
    rlab_llm_msg m[2] = {{"system", sys_msg}, {"user", q->prompt}};
    rlab_llm_req rq = {.task = task_of(d->type),
                       .msgs = m,
                       .n_msgs = 2,
                       .opts = {.temperature = 0.0, .max_tokens = 256},
                       .ctx = d};
    int rc = rlab_llm_pipe_submit(p, &rq, tag, err);
    if (rc == RLAB_OK) {
        q->attempt++;
        q->state = SIM_ASK_WAIT;
        s->acc_llm_calls++;
    }
    return rc;
}

int sim_ask_start(sim *s, rlab_llm_pipe *p, sim_dec *d, sim_ask *q, int64_t tag, rlab_err *err)
{
    *q = (sim_ask){0};
    q->prompt = sim_prompt(s, d);
    if (!q->prompt)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    s->acc_llm_decisions++;
    if (s->llm_down) {
        q->state = SIM_ASK_FALLBACK;
        return RLAB_OK;
    }
    return ask_submit(s, p, d, q, tag, err);
}

int sim_ask_reply(sim *s, rlab_llm_pipe *p, sim_dec *d, sim_ask *q, int64_t tag,
                  const rlab_llm_result *r, rlab_err *err)
{
    if (r->status == RLAB_ECANCELED)
        return rlab_errf(err, RLAB_ECANCELED, "%s", r->error);
    if (r->status != RLAB_OK || !r->text) {
        note_error(s, r->status != RLAB_OK ? error_kind(r) : SIM_LLM_PROTOCOL,
                   r->status != RLAB_OK ? r->error : "llm: a reply without text");
        /* a dead server: after a run of failures the round's later decisions fall back
         * without asking (sim_decide's rule, with a run instead of a whole batch) */
        if (++s->llm_fail_run >= SIM_LLM_DOWN_RUN)
            s->llm_down = 1;
        q->state = SIM_ASK_FALLBACK;
        return RLAB_OK;
    }
    s->llm_fail_run = 0;
    if (sim_parse(s, d, r->text) == 0) {
        d->by = SIM_BY_LLM;
        q->state = SIM_ASK_DONE;
        return RLAB_OK;
    }
    note_unparsable(s, task_of(d->type), r->text);
    if (q->attempt > s->cfg.llm_retries || s->llm_down) {
        q->state = SIM_ASK_FALLBACK;
        return RLAB_OK;
    }
    return ask_submit(s, p, d, q, tag, err);
}

void sim_ask_fallback(sim *s, sim_dec *d, sim_ask *q)
{
    fallback_one(s, d, q->prompt);
    q->state = SIM_ASK_DONE;
}

void sim_ask_clear(sim_ask *q)
{
    rlab_free(q->prompt);
    q->prompt = NULL;
}

/* ---- the interview -------------------------------------------------------------------------- */

char *sim_offline_answer(sim *s, int32_t a, const char *question)
{
    const sim_agent *ag = &s->agents[a];
    sbuf b = {rlab_malloc(1024), 0, 1024};
    float qv[SIM_DIM];
    sim_question_vec(s, question, qv);
    /* blend the question with the agent's taste so that a vague question still retrieves
     * what the agent cares about */
    const float *tv = s->taste_vec + (size_t)a * SIM_DIM;
    float nn = 0.0f;
    for (int d = 0; d < SIM_DIM; d++) {
        qv[d] = qv[d] + 0.5f * tv[d];
        nn += qv[d] * qv[d];
    }
    if (nn > 0.0f)
        for (int d = 0; d < SIM_DIM; d++)
            qv[d] /= sqrtf(nn);
    int32_t asked = sim_find_title(s, question);
    sb_printf(&b, "I'm %s.", ag->name);
    if (asked >= 0) {
        if (sim_has_watched(ag, asked)) {
            int liked = sim_affinity(s, a, asked) >= liked_threshold(ag) * s->amax[a];
            sb_printf(&b, " I watched <%s> and I %s it.", sim_item_title(s, asked),
                      liked ? "liked" : "did not like");
        } else if (sim_heard_index(ag, asked) >= 0) {
            sb_printf(&b, " I've heard about <%s> but haven't seen it yet.",
                      sim_item_title(s, asked));
        } else {
            sb_printf(&b, " I don't know <%s>.", sim_item_title(s, asked));
        }
    }
    int idx[SIM_RETRIEVE_K];
    int k = sim_retrieve(s, a, qv, 3, idx);
    if (k > 0) {
        sb_printf(&b, " What I remember:");
        char prev[3][256];
        for (int i = 0; i < k && i < 3; i++) {
            sim_memory_text_me(s, a, &ag->ltm[idx[i]], prev[i], sizeof prev[i]);
            int dup = 0;
            for (int j = 0; j < i && j < 3; j++)
                dup |= strcmp(prev[i], prev[j]) == 0;
            if (!dup)
                sb_printf(&b, " %s", prev[i]);
        }
    }
    int nw = 0;
    for (int i = 1; i <= SIM_HIST && nw < 3; i++) {
        int32_t it = ag->watched[(ag->watched_pos - i + SIM_HIST) % SIM_HIST];
        if (it >= 0)
            sb_printf(&b, "%s<%s>", nw++ ? ", " : " Lately I watched ", sim_item_title(s, it));
    }
    if (nw)
        sb_printf(&b, ".");
    int32_t h = sim_best_heard(s, a);
    if (h >= 0)
        sb_printf(&b, " Friends keep telling me about <%s>.", sim_item_title(s, h));
    if (strstr(question, "recommend") || strstr(question, "Recommend")) {
        int liked = 0, tot = 0;
        for (int i = 0; i < SIM_HIST; i++)
            if (ag->watched[i] >= 0) {
                tot++;
                liked += sim_affinity(s, a, ag->watched[i]) >= liked_threshold(ag) * s->amax[a];
            }
        sb_printf(&b, " The recommendations have been %s.",
                  tot == 0           ? "nothing I wanted to watch yet"
                  : 2 * liked >= tot ? "mostly good for me"
                                     : "hit and miss");
    }
    sb_printf(&b, " Honestly, %s is what I enjoy most.",
              sim_genre_name(s, sim_favourite_genre(s, a)));
    return b.p;
}

int32_t sim_most_watched_genre(const sim *s, int32_t a)
{
    const float *gc = s->gcount + (size_t)a * (size_t)s->G;
    int32_t best = -1;
    for (int32_t g = 0; g < s->G; g++)
        if (gc[g] > 0.0f && (best < 0 || gc[g] > gc[best]))
            best = g;
    return best;
}

int32_t sim_favourite_genre(const sim *s, int32_t a)
{
    const float *t = sim_taste(s, a);
    const float *gc = s->gcount + (size_t)a * (size_t)s->G;
    int32_t g1 = 0;
    for (int32_t g = 1; g < s->G; g++)
        if (t[g] > t[g1] || (!(t[g] < t[g1]) && gc[g] > gc[g1]))
            g1 = g;
    return g1;
}
