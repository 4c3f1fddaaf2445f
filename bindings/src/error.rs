//! The one error type that crosses the boundary, [`QuartierError`], and `guard`, which runs a
//! call with panics caught so that a panic arrives as `QuartierError::Internal` instead of
//! unwinding into foreign code.
//!
//! `QuartierError` itself is defined in quartier-domain (`public_error`, derived behind the
//! `uniffi` feature: ids refused while crossing must be able to name it) and filled from the
//! core's rich error at one place, `From<quartier_core::Error>` in `core/src/error.rs`. This
//! module adds only what belongs to the boundary: panics.

use std::panic::{catch_unwind, AssertUnwindSafe};

pub use quartier_core::QuartierError;

/// A panic caught at the boundary, as the error the app sees (and logged: it is a bug).
pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> QuartierError {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!(panic = %what, "a panic was caught at the FFI boundary");
    QuartierError::internal(format!(
        "internal error (a bug in quartier, please report it): {what}"
    ))
}

/// Result of every exported call.
pub type FfiResult<T> = Result<T, QuartierError>;

/// A count, size or limit from the app as the core takes it. The API speaks signed numbers
/// (Kotlin's `ULong`/`UInt` are not what an Android developer expects, and Java has none), so a
/// negative one is refused here, with the parameter's name.
pub(crate) fn non_negative<T: TryFrom<i64>>(what: &str, value: i64) -> FfiResult<T> {
    T::try_from(value).map_err(|_| QuartierError::Invalid {
        reason: format!("{what} must be between 0 and its maximum, got {value}"),
    })
}

/// A count or size from the core as the API gives it (saturating: no real count reaches it).
pub(crate) use quartier_core::saturating_i64 as signed;

/// Runs one exported call with panics caught: a panic becomes [`QuartierError::Internal`].
/// The core keeps its state consistent across a panic (SQLite transactions roll back on
/// unwind, its mutexes recover from poisoning), so the store stays usable afterwards.
pub(crate) fn guard<T>(f: impl FnOnce() -> FfiResult<T>) -> FfiResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| Err(from_panic(&*payload)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quartier_core::Error as CoreError;

    #[test]
    fn negative_numbers_from_the_app_are_refused_with_their_name() {
        assert_eq!(non_negative::<u32>("limit", 20), Ok(20));
        let e = non_negative::<u32>("limit", -1).expect_err("negative");
        assert!(
            matches!(&e, QuartierError::Invalid { reason } if reason.contains("limit") && reason.contains("-1")),
            "{e:?}"
        );
        assert!(non_negative::<u32>("max uses", i64::from(u32::MAX) + 1).is_err());
        assert_eq!(signed(u64::MAX), i64::MAX);
        assert_eq!(signed(7usize), 7);
    }

    #[test]
    fn core_errors_keep_their_variant_and_message() {
        let e: QuartierError = CoreError::NotFound {
            what: "item",
            id: "abc".into(),
        }
        .into();
        assert_eq!(
            e,
            QuartierError::NotFound {
                reason: "item abc not found".into()
            }
        );
        let e: QuartierError = CoreError::Cancelled.into();
        assert!(matches!(e, QuartierError::Cancelled { reason } if reason == "sync cancelled"));
    }

    #[test]
    fn server_refusals_keep_status_and_code() {
        let e: QuartierError = CoreError::Server {
            status: 403,
            code: "not_a_member".into(),
            message: "not a member of this space".into(),
        }
        .into();
        assert_eq!(e.error_code(), "not_a_member");
        assert_eq!(e.http_status(), Some(403));
        assert!(!e.is_retryable());
        let e: QuartierError = CoreError::Offline("connection refused".into()).into();
        assert_eq!(
            (e.error_code().as_str(), e.http_status(), e.is_retryable()),
            ("offline", None, true)
        );
        let e: QuartierError = CoreError::RateLimited { retry_after_secs: 7 }.into();
        assert!(matches!(
            e,
            QuartierError::RateLimited {
                retry_after_secs: 7,
                ..
            }
        ));
        assert_eq!(e.http_status(), Some(429));
    }

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let result: FfiResult<()> = guard(|| panic!("boom"));
        match result {
            Err(QuartierError::Internal { reason }) => assert!(reason.contains("boom"), "{reason}"),
            other => panic!("expected Internal, got {other:?}"),
        }
        assert_eq!(guard(|| Ok(3)), Ok(3));
    }
}
