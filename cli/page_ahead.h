/* cli/page_ahead.h — a thread that brings a mapped input file into memory ahead of the scan.
 *
 * `mamorictl scan` maps its input files and parses them in place. A page the scan touches
 * first costs a fault, and a page not in the page cache costs a read from disk on top: on a
 * cold file that is more CPU and wall time than parsing, normalizing and detecting together
 * (docs/detection.md §10.16). The read-ahead thread reads one byte of every page a window ahead
 * of the position the scan reports, so that the scan thread finds its pages read and mapped
 * and the disk reads overlap the scan on another core. It only reads: the scan's results do
 * not depend on it. A file the page cache holds is left to the scan's own faults.
 */
#ifndef MAMORI_CLI_PAGE_AHEAD_H
#define MAMORI_CLI_PAGE_AHEAD_H

#include <stddef.h>

typedef struct page_ahead page_ahead;

/* How far ahead of the scan `mamorictl scan` keeps its pages read in: the scan consumes
 * 0.5–1.5 GB/s, and the thread naps 1 ms when the window is full. */
#define PAGE_AHEAD_WINDOW ((size_t)64 << 20)

/* Starts reading [base, base + len) in, `window` bytes ahead of position 0 (rounded up to
 * whole pages). NULL, and the scan faults its pages in itself, when the page cache already
 * holds 9 in 10 of the file's pages (there the thread cost more than it saved) or the thread
 * cannot be started. */
page_ahead *page_ahead_start(const char *base, size_t len, size_t window);

/* The scan has reached offset pos: the thread keeps the window after it read in. Cheap
 * (one relaxed store); NULL r is allowed. */
void page_ahead_advance(page_ahead *r, size_t pos);

/* Stops and joins the thread; returns the CPU seconds it used (0 for NULL r). */
double page_ahead_stop(page_ahead *r);

#endif
