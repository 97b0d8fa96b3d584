/* The index the workers search, shared by reference: a reload (SIGHUP) swaps
 * in a new one while searches already running finish on the old one, which is
 * closed when its last reference goes. */
#include <stdio.h>
#include <stdlib.h>

#include "http/internal.h"

ear_http_index_ref *ear_http_index_acquire(ear_http_server *server)
{
    pthread_mutex_lock(&server->index_lock);
    ear_http_index_ref *ref = server->index;
    ref->references++;
    pthread_mutex_unlock(&server->index_lock);
    return ref;
}

void ear_http_index_release(ear_http_server *server, ear_http_index_ref *ref)
{
    if (!ref)
        return;
    pthread_mutex_lock(&server->index_lock);
    int last = --ref->references == 0;
    pthread_mutex_unlock(&server->index_lock);
    if (last) {
        ear_index_close(ref->index);
        free(ref);
    }
}

/* Opens, verifies and wraps the index file, holding one reference. */
ear_http_index_ref *ear_http_index_open(ear_http_server *server, ear_error *err)
{
    ear_http_index_ref *ref = NULL;
    char note[1024];
    ear_index *index = ear_query_open_index(server->index_path, server->data_dir, server->model,
                                            note, sizeof note, err);
    if (!index)
        goto fail;
    if (note[0])
        fprintf(stderr, "ear serve: %s\n", note);
    if (ear_index_verify(index, err) != 0)
        goto fail;
    if (ear_index_count(index) == 0) {
        ear_error_set(err, "%s: the index holds no embeddings", server->index_path);
        goto fail;
    }
    ref = malloc(sizeof *ref);
    if (!ref) {
        ear_error_set(err, "out of memory");
        goto fail;
    }
    ref->index = index;
    ref->references = 1;
    return ref;
fail:
    ear_index_close(index);
    return NULL;
}

int ear_http_server_reload_index(ear_http_server *server, ear_error *err)
{
    ear_http_index_ref *fresh = ear_http_index_open(server, err);
    if (!fresh)
        return -1;
    pthread_mutex_lock(&server->index_lock);
    ear_http_index_ref *old = server->index;
    server->index = fresh;
    pthread_mutex_unlock(&server->index_lock);
    ear_http_index_release(server, old);
    return 0;
}

