/* Measures the machine's Argon2id limit: hashes per second of the given parameters,
   one thread per core, with Debian's libargon2 (the library Gatehouse links). */
#include <argon2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned t_cost, m_cost, parallelism;
static double seconds;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *work(void *counter) {
    unsigned char salt[16] = "benchmark-salt!";
    char encoded[256];
    double end = now() + seconds;
    long count = 0;
    while (now() < end) {
        if (argon2id_hash_encoded(t_cost, m_cost, parallelism, "benchmark password", 18, salt, 16, 32, encoded, sizeof encoded) != ARGON2_OK) {
            fprintf(stderr, "argon2 failed\n");
            exit(1);
        }
        count++;
    }
    *(long *)counter = count;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s memory_kib iterations parallelism threads seconds\n", argv[0]);
        return 2;
    }
    m_cost = atoi(argv[1]);
    t_cost = atoi(argv[2]);
    parallelism = atoi(argv[3]);
    int threads = atoi(argv[4]);
    seconds = atof(argv[5]);
    pthread_t ids[64];
    long counts[64] = {0};
    double start = now();
    for (int i = 0; i < threads; i++) pthread_create(&ids[i], NULL, work, &counts[i]);
    long total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(ids[i], NULL);
        total += counts[i];
    }
    printf("%.2f\n", total / (now() - start));
    return 0;
}
