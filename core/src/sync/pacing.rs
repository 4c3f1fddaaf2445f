//! Sans-IO: the byte budget of the next page, from how fast the last one came.
//!
//! A dropped link loses the page in flight, so a page should be about one second of the link:
//! on 2G (≈ 31 KB/s) a cut then costs ≈ 30 KB instead of a fixed large page; on a fast link
//! the budget grows to the client's configured ceiling within a few pages. No clock in here:
//! the caller measures each exchange and passes the figures in.

use std::time::Duration;

/// Budget of the first page of a sync: about one second of a 2G link.
pub const INITIAL_PAGE_BUDGET: u32 = 32 * 1024;
/// The smallest budget asked for (the server does not make pages smaller than 16 KiB anyway).
pub const MIN_PAGE_BUDGET: u32 = 16 * 1024;
/// How long one page should take on the link.
pub const PAGE_TARGET: Duration = Duration::from_secs(1);

/// The budget of the first page, for a client configured with `ceiling`.
pub fn initial_page_budget(ceiling: u32) -> u32 {
    INITIAL_PAGE_BUDGET.min(ceiling)
}

/// The budget of the next page after an exchange that brought `bytes_received` (body, as on the
/// wire) in `elapsed` (request sent to body read) with a budget of `previous`.
///
/// Aims at [`PAGE_TARGET`] of the measured throughput, within `[MIN_PAGE_BUDGET, ceiling]`; a
/// ceiling below the floor wins (a client configured for small pages gets small pages). It
/// shrinks at most ÷2 per page, so one stalled or short exchange (the last page of a space is
/// often small) does not swing it down; it grows at once, since a high throughput can only have
/// been measured on a link that has it (a fast link needs few pages).
pub fn next_page_budget(previous: u32, bytes_received: u64, elapsed: Duration, ceiling: u32) -> u32 {
    // No time measured is no measurement: keep the budget.
    let fit = if elapsed.is_zero() {
        u64::from(previous)
    } else {
        let per_target = u128::from(bytes_received) * PAGE_TARGET.as_nanos() / elapsed.as_nanos();
        u64::try_from(per_target).unwrap_or(u64::MAX)
    };
    let stepped = fit.max(u64::from(previous / 2));
    let bounded = u32::try_from(stepped).unwrap_or(u32::MAX);
    bounded.max(MIN_PAGE_BUDGET).min(ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CEILING: u32 = 256 * 1024;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn starts_small_unless_configured_smaller() {
        assert_eq!(initial_page_budget(CEILING), 32 * 1024);
        assert_eq!(initial_page_budget(8 * 1024), 8 * 1024);
    }

    #[test]
    fn settles_at_about_one_second_of_a_2g_link() {
        // 31 KB/s with 300 ms of round trip: a page of B bytes takes 0.3 s + B / 31 000.
        let mut budget = initial_page_budget(CEILING);
        for _ in 0..20 {
            let secs = 0.3 + f64::from(budget) / 31_000.0;
            budget = next_page_budget(budget, u64::from(budget), Duration::from_secs_f64(secs), CEILING);
        }
        assert!(
            (16 * 1024..=32 * 1000).contains(&budget),
            "a page is at most one second of the link: {budget}"
        );
        let secs = 0.3 + f64::from(budget) / 31_000.0;
        assert!(secs <= 1.05, "{secs}");
    }

    #[test]
    fn grows_to_the_ceiling_on_a_fast_link() {
        let mut budget = initial_page_budget(CEILING);
        let mut pages = 0;
        while budget < CEILING {
            budget = next_page_budget(budget, u64::from(budget), ms(5), CEILING);
            pages += 1;
        }
        assert_eq!(budget, CEILING);
        assert_eq!(pages, 1, "32 KiB in 5 ms: the link takes the whole budget");
    }

    #[test]
    fn shrinks_at_most_twofold_per_page() {
        // Very slow, or a short last page: halves, not down to the bare throughput.
        assert_eq!(next_page_budget(128 * 1024, 1000, ms(10_000), CEILING), 64 * 1024);
        assert_eq!(next_page_budget(64 * 1024, 500, ms(300), CEILING), 32 * 1024);
        // Faster than the budget: what the link carries in a second.
        assert_eq!(
            next_page_budget(40 * 1024, 40 * 1024, ms(500), CEILING),
            80 * 1024
        );
        // In between: the throughput times one second.
        assert_eq!(next_page_budget(30_000, 30_000, ms(1_500), CEILING), 20_000);
    }

    #[test]
    fn stays_within_floor_and_ceiling() {
        assert_eq!(
            next_page_budget(MIN_PAGE_BUDGET, 100, ms(5_000), CEILING),
            MIN_PAGE_BUDGET
        );
        assert_eq!(
            next_page_budget(CEILING, u64::from(CEILING), ms(1), CEILING),
            CEILING
        );
        // A ceiling under the floor is what the client asked for.
        assert_eq!(next_page_budget(4096, 4096, ms(1), 4096), 4096);
        assert_eq!(next_page_budget(4096, 10, ms(9_000), 4096), 4096);
        // Degenerate measurements do not panic or overflow.
        assert_eq!(
            next_page_budget(u32::MAX, u64::MAX, Duration::ZERO, u32::MAX),
            u32::MAX
        );
        assert_eq!(next_page_budget(0, 0, Duration::ZERO, CEILING), MIN_PAGE_BUDGET);
        assert_eq!(
            next_page_budget(CEILING, u64::MAX, Duration::from_nanos(1), CEILING),
            CEILING
        );
    }
}
