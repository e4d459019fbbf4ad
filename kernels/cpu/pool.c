// Persistent worker pool. Workers are created once per backend; between jobs
// they spin briefly on the job generation counter and then sleep on a
// condition variable. A job is a task count handed out through an atomic
// counter; the calling thread takes part as thread 0.
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "sl.h"

#if SL_X86
#include <immintrin.h>
static inline void cpu_relax(void) { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax(void) { __asm__ __volatile__("yield"); }
#else
static inline void cpu_relax(void) {}
#endif

// Spin iterations before a worker sleeps, and before the caller yields.
#define SL_SPIN_WORKER 4000
#define SL_SPIN_CALLER 2000

struct worker_arg {
	sl_pool *p;
	int id;
};

struct sl_pool {
	int n; // threads including the caller
	pthread_t *th;
	struct worker_arg *args;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_int gen;      // bumped for every job
	atomic_int next;     // next task index
	atomic_int pending;  // workers that have not finished the current job
	atomic_int sleepers; // workers blocked on cv
	atomic_int stop;
	sl_task_fn fn;
	void *arg;
	int ntasks;
};

static void run_tasks(sl_pool *p, int thread) {
	sl_task_fn fn = p->fn;
	void *arg = p->arg;
	int nt = p->ntasks;
	for (;;) {
		int t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
		if (t >= nt) break;
		fn(arg, t, thread);
	}
}

static void *worker_main(void *varg) {
	struct worker_arg *wa = varg;
	sl_pool *p = wa->p;
	int seen = 0;
	for (;;) {
		int g = atomic_load_explicit(&p->gen, memory_order_acquire);
		for (int i = 0; g == seen && i < SL_SPIN_WORKER; i++) {
			cpu_relax();
			g = atomic_load_explicit(&p->gen, memory_order_acquire);
		}
		if (g == seen) {
			pthread_mutex_lock(&p->mu);
			atomic_fetch_add(&p->sleepers, 1);
			while ((g = atomic_load(&p->gen)) == seen &&
			       !atomic_load(&p->stop))
				pthread_cond_wait(&p->cv, &p->mu);
			atomic_fetch_sub(&p->sleepers, 1);
			pthread_mutex_unlock(&p->mu);
		}
		if (atomic_load(&p->stop)) return NULL;
		seen = g;
		run_tasks(p, wa->id);
		atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel);
	}
}

sl_pool *sl_pool_new(int nthreads) {
	if (nthreads < 1) nthreads = 1;
	sl_pool *p = calloc(1, sizeof *p);
	if (!p) return NULL;
	p->n = nthreads;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	atomic_init(&p->gen, 0);
	atomic_init(&p->next, 0);
	atomic_init(&p->pending, 0);
	atomic_init(&p->sleepers, 0);
	atomic_init(&p->stop, 0);
	if (nthreads > 1) {
		p->th = calloc((size_t)nthreads, sizeof(pthread_t));
		p->args = calloc((size_t)nthreads, sizeof(struct worker_arg));
		if (!p->th || !p->args) {
			free(p->th);
			free(p->args);
			free(p);
			return NULL;
		}
		for (int i = 1; i < nthreads; i++) {
			p->args[i].p = p;
			p->args[i].id = i;
			if (pthread_create(&p->th[i], NULL, worker_main, &p->args[i]) != 0) {
				// Run with the threads that did start.
				p->n = i;
				break;
			}
		}
	}
	return p;
}

void sl_pool_free(sl_pool *p) {
	if (!p) return;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stop, 1);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->th);
	free(p->args);
	free(p);
}

int sl_pool_threads(const sl_pool *p) { return p->n; }

void sl_pool_run(sl_pool *p, sl_task_fn fn, void *arg, int ntasks) {
	if (ntasks <= 0) return;
	if (p->n == 1 || ntasks == 1) {
		for (int t = 0; t < ntasks; t++) fn(arg, t, 0);
		return;
	}
	p->fn = fn;
	p->arg = arg;
	p->ntasks = ntasks;
	atomic_store_explicit(&p->next, 0, memory_order_relaxed);
	atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
	atomic_fetch_add(&p->gen, 1); // seq_cst: pairs with the sleepers check
	if (atomic_load(&p->sleepers) > 0) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	run_tasks(p, 0);
	for (int i = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; i++) {
		if (i < SL_SPIN_CALLER)
			cpu_relax();
		else
			sched_yield();
	}
}
