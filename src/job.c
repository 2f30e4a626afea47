/*
 * Job lifecycle helpers; see job.h.
 */
#include "herald/job.h"

#include <stdlib.h>
#include <string.h>

struct job *job_new(struct event *ev, struct sub *sub, struct origin *origin, int attempt,
                    int64_t first_at_ms, size_t body_max)
{
    struct job *job = calloc(1, sizeof(*job));
    if (!job)
        return NULL;
    job->ev = event_ref(ev);
    job->sub = subs_ref(sub);
    job->origin = origin;
    job->attempt = attempt;
    job->first_at_ms = first_at_ms;
    buf_init(&job->response, body_max);
    job->result.retry_after_ms = -1;
    return job;
}

void job_reset_attempt(struct job *job)
{
    memset(&job->result, 0, sizeof(job->result));
    job->result.retry_after_ms = -1;
    job->sent_at_ms = 0;
    job->latency_us = 0;
    job->error[0] = '\0';
    buf_reset(&job->response);
    memset(&job->decision, 0, sizeof(job->decision));
}

void job_free(struct job *job)
{
    if (!job)
        return;
    event_unref(job->ev);
    subs_unref(job->sub);
    buf_release(&job->response);
    free(job->body);
    free(job->message);
    free(job);
}
