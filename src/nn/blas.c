/* OpenBLAS and oneDNN set-up: one thread per process unless asked otherwise. */
#include <pthread.h>
#include <stdatomic.h>

#include "nn/backend.h"
#include "nn/network.h"

void openblas_set_num_threads(int threads); /* not in every version's cblas.h */

/* Ear runs one request per worker thread; BLAS threads on top would fight over the cores. */
static atomic_int threads_chosen;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void set_default_threads(void)
{
    if (!atomic_load(&threads_chosen))
        openblas_set_num_threads(1);
}

void ear_nn_blas_prepare(void)
{
    pthread_once(&default_once, set_default_threads);
}

void ear_nn_set_threads(int threads)
{
    atomic_store(&threads_chosen, 1);
    openblas_set_num_threads(threads < 1 ? 1 : threads);
    ear_nn_backend_set_threads(threads);
}

int ear_nn_set_weight_type(const char *name, ear_error *err)
{
    ear_nn_weights weights;
    if (ear_nn_weights_parse(name, &weights, err) != 0)
        return -1;
    ear_nn_backend_set_weights(weights);
    return 0;
}
