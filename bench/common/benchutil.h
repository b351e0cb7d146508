/*
 * bench/common/benchutil: what every benchmark reports next to its figures, in one place:
 * the 1-minute load average (a busy machine explains a slow figure), the process's peak
 * resident memory and its CPU seconds (all threads).
 */
#ifndef RLAB_BENCHUTIL_H
#define RLAB_BENCHUTIL_H

/* /proc/loadavg's first field; -1 when unreadable. */
double rlab_bench_load1(void);
/* VmHWM of /proc/self/status in MB; 0 when unreadable. */
double rlab_bench_peak_rss_mb(void);
/* user + system CPU seconds of the process so far (getrusage). */
double rlab_bench_cpu_seconds(void);

#endif /* RLAB_BENCHUTIL_H */
