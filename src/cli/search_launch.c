/* fsdpsim search under mpirun or srun. fsdpsim does not link MPI (fsdprun does; the simulator
 * builds without it): the launcher's environment says which rank a process is and which job it
 * belongs to, and the ranks share what they need through files next to --out:
 *  - a work queue (OUT.queue-JOB): a counter of the next point, advanced by each rank under an
 *    fcntl lock when it wants another batch. Configurations cost 1 ms to 100 ms each (a deep
 *    pipeline with many micro-batches against a pruned point), so ranks take small batches as
 *    they go rather than fixed shares. A lock costs microseconds: negligible next to a batch.
 *  - markers (OUT.I-of-N.done holding the job id): rank 0 merges when every rank's is there.
 * fcntl locks work across nodes on a shared file system that supports them (GPFS, Lustre with
 * flock enabled, NFSv4); where they do not, --shard I/N needs no locking at all. */
#include "search_launch.h"
#include "../util/cfg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool cli_launch_rank(int *rank, int *size)
{
    static const char *vars[][2] = {{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
                                    {"PMI_RANK", "PMI_SIZE"},
                                    {"SLURM_PROCID", "SLURM_NTASKS"}};
    for (size_t i = 0; i < G_N_ELEMENTS(vars); i++) {
        const char *r = g_getenv(vars[i][0]), *n = g_getenv(vars[i][1]);
        if (r && n && atoi(n) > 1 && atoi(r) >= 0 && atoi(r) < atoi(n)) {
            *rank = atoi(r), *size = atoi(n);
            return true;
        }
    }
    return false;
}

char *cli_launch_job_id(void)
{
    const char *ns = g_getenv("PMIX_NAMESPACE");
    if (!ns)
        ns = g_getenv("OMPI_MCA_ess_base_jobid");
    if (ns)
        return g_strdup(ns);
    const char *job = g_getenv("SLURM_JOB_ID"), *step = g_getenv("SLURM_STEP_ID");
    return job ? g_strdup_printf("%s.%s", job, step ? step : "0") : NULL;
}

static bool lock(int fd, short type)
{
    struct flock l = {.l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    while (fcntl(fd, F_SETLKW, &l) != 0)
        if (errno != EINTR)
            return false;
    return true;
}

bool cli_launch_queue_open(CliLaunchQueue *q, const char *file, int rank, int size,
                           GError **error)
{
    q->rank = rank, q->size = size, q->took_first = false;
    q->file = g_strdup(file);
    q->fd = open(file, O_RDWR | O_CREAT, 0644);
    if (q->fd < 0) {
        cfg_input_error(error, "option --out: cannot create the work queue %s: %s", file,
                        g_strerror(errno));
        g_free(q->file);
        return false;
    }
    return true;
}

bool cli_launch_queue_next(CliLaunchQueue *q, uint64_t batch, uint64_t total, uint64_t *start)
{
    if (!q->took_first) {
        q->took_first = true;
        *start = (uint64_t)q->rank * batch;
        if (*start < total)
            return true;
    }
    if (!lock(q->fd, F_WRLCK))
        return false;
    /* an empty file is a queue past the ranks' first batches: the first rank to come needs no
     * set-up */
    uint64_t next = (uint64_t)q->size * batch;
    if (pread(q->fd, &next, sizeof next, 0) != (ssize_t)sizeof next)
        next = (uint64_t)q->size * batch;
    *start = next;
    next += batch;
    bool ok = *start < total && pwrite(q->fd, &next, sizeof next, 0) == (ssize_t)sizeof next;
    lock(q->fd, F_UNLCK);
    return ok;
}

void cli_launch_queue_close(CliLaunchQueue *q, bool remove)
{
    close(q->fd);
    if (remove)
        unlink(q->file);
    g_free(q->file);
}

void cli_launch_mark_done(const char *file, const char *job_id)
{
    char *done = g_strdup_printf("%s.done", file);
    g_file_set_contents(done, job_id, -1, NULL);
    g_free(done);
}

void cli_launch_wait_done(const char *file, const char *job_id)
{
    char *done = g_strdup_printf("%s.done", file);
    for (;;) { /* mpirun and srun end every rank when one fails: this does not wait forever */
        char *text = NULL;
        bool ready = g_file_get_contents(done, &text, NULL, NULL) && !strcmp(text, job_id);
        g_free(text);
        if (ready)
            break;
        g_usleep(20000);
    }
    g_free(done);
}
