/* fsdpsim search under a launcher (mpirun, srun), without linking MPI (search_launch.c). */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* This process's rank and the job's size, from the launcher's environment (Open MPI's
 * OMPI_COMM_WORLD_*, MPICH's and Intel MPI's PMI_*, SLURM's SLURM_PROCID/SLURM_NTASKS); false
 * when not launched, or launched alone. */
bool cli_launch_rank(int *rank, int *size);
/* The launched job's id (PMIX_NAMESPACE, OMPI_MCA_ess_base_jobid, SLURM_JOB_ID.SLURM_STEP_ID),
 * or NULL when the launcher names none. g_free it. */
char *cli_launch_job_id(void);

/* A work queue shared by the ranks of one job: a counter in FILE (created by the first rank to
 * come), advanced under an fcntl write lock. Rank r's first batch is the r-th, taken without the
 * queue (the counter starts past the ranks' first batches): every rank works, however late the
 * launcher starts it, at the cost of waiting for the last rank's first batch, which the merge
 * waits for anyway. */
typedef struct {
    int fd;
    char *file;
    int rank, size;
    bool took_first;
} CliLaunchQueue;

bool cli_launch_queue_open(CliLaunchQueue *q, const char *file, int rank, int size,
                           GError **error);
/* The next `batch` indices: *start, false when the queue is past `total`. */
bool cli_launch_queue_next(CliLaunchQueue *q, uint64_t batch, uint64_t total, uint64_t *start);
void cli_launch_queue_close(CliLaunchQueue *q, bool remove);

/* FILE.done holds the job id when a rank has written all its records to FILE */
void cli_launch_mark_done(const char *file, const char *job_id);
/* Waits until FILE.done holds job_id (a marker of an earlier job does not count) */
void cli_launch_wait_done(const char *file, const char *job_id);
