//! A fleet sharing one real Redis, below the runner: ten SDKs with the
//! superuser whose session is in the [`RedisStore`] log in once (read from
//! the project's emulator), a replica that dies holding the login lease is
//! replaced within the lease, and three schedulers claiming through the
//! store fire each occurrence of a timer once. The runner-level fleet tests
//! are in `tests/fleet`.
//!
//! Every test has its own key prefix on the machine's Redis on
//! 127.0.0.1:6379 (nothing is flushed).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::RedisStore;
use super::redis::RedisStoreOptions;
use crate::dispatch::{Dispatcher, TaskLimits};
use crate::emulator::Inspector;
use crate::handler::Context;
use crate::registry::Registry;
use crate::sdk::{Backendless, SdkConfig, SuperuserCredentials};
use crate::testing::TestApp;
use crate::timer::{Frequency, Schedule};
use crate::transport::scheduler::{self, Clock, OccurrenceClaim};

/// The shared Redis of the machine (DEVELOPERS.md).
const SHARED_REDIS: &str = "redis://127.0.0.1:6379";
const APP: &str = "dev-app";
const CLOUD: &str = "dev-cloudcode-key";
const ADMIN: &str = "admin@example.com";
const ADMIN_PASS: &str = "admin-pass";

fn fresh_prefix() -> String {
    format!("test-{}:", uuid::Uuid::new_v4().simple())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn store(url: &str, prefix: &str, lease: Duration) -> RedisStore {
    RedisStore::new(
        &url.to_owned().into(),
        RedisStoreOptions {
            prefix: prefix.to_owned(),
            lease_ttl: lease,
            timer_lock: Duration::from_secs(600),
        },
    )
    .unwrap()
}

/// The dev app's emulator on 127.0.0.1:0, its URL and its inspector. Its
/// runner names no app, so it never logs in; both stop when dropped.
async fn emulator() -> (TestApp, String, Inspector) {
    let app = TestApp::builder()
        .default_config()
        .webhook_secrets(["whsec_ZmxlZXQtdGVzdHMtc2VjcmV0LWZvci10aGUtcnVubmVycw=="])
        .start()
        .await;
    let (url, inspect) = (app.emulator_url().to_owned(), app.inspect());
    (app, url, inspect)
}

/// One "replica": an SDK with the superuser, its session in the shared store.
fn replica(url: &str, store: RedisStore) -> Backendless {
    let mut config = SdkConfig::new(url, APP, CLOUD.into());
    config.superuser = Some(SuperuserCredentials {
        login: ADMIN.into(),
        password: ADMIN_PASS.into(),
    });
    config.logout_on_shutdown = false;
    Backendless::with_store(config, Arc::new(store)).unwrap()
}

/// `n` superuser calls spread over `replicas`, all at once; all succeed.
async fn superuser_calls(replicas: &[Backendless], n: usize) {
    let calls = (0..n).map(|i| {
        let sdk = replicas[i % replicas.len()].clone();
        async move {
            sdk.superuser()
                .counters()
                .get("fleet")
                .await
                .expect("a superuser call succeeds")
        }
    });
    join_all(calls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_replicas_log_the_superuser_in_once_and_again_once_after_expiry() {
    let (app, url, inspect) = emulator().await;
    let prefix = fresh_prefix();
    let replicas: Vec<Backendless> = (0..10)
        .map(|_| replica(&url, store(SHARED_REDIS, &prefix, Duration::from_secs(20))))
        .collect();

    superuser_calls(&replicas, 1_000).await;
    assert_eq!(inspect.login_count(ADMIN), 1, "one login for the fleet");

    assert!(inspect.expire_sessions(ADMIN) >= 1);
    superuser_calls(&replicas, 1_000).await;
    assert_eq!(
        inspect.login_count(ADMIN),
        2,
        "one re-login for all ten replicas"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_dies_holding_the_login_lease_is_replaced_within_the_lease_time() {
    let (app, url, inspect) = emulator().await;
    let prefix = fresh_prefix();
    let lease = Duration::from_millis(1_500);
    // The dead replica: it took the lease and will never log in.
    let client = redis::Client::open(SHARED_REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let taken: Option<String> = redis::cmd("SET")
        .arg(format!("{prefix}session:lease"))
        .arg("dead-replica")
        .arg("NX")
        .arg("PX")
        .arg(lease.as_millis() as u64)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(taken.is_some());

    let replicas: Vec<Backendless> = (0..3)
        .map(|_| replica(&url, store(SHARED_REDIS, &prefix, lease)))
        .collect();
    let started = Instant::now();
    superuser_calls(&replicas, 30).await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1_200), "{waited:?}");
    assert!(waited < lease + Duration::from_secs(2), "{waited:?}");
    assert_eq!(
        inspect.login_count(ADMIN),
        1,
        "one login after the lease lapsed"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_schedulers_fire_each_occurrence_of_a_timer_once() {
    let prefix = fresh_prefix();
    let stop = CancellationToken::new();
    let fires = Arc::new(AtomicUsize::new(0));
    // Which scheduler claimed each occurrence.
    let claimed: Arc<Mutex<HashMap<i64, Vec<usize>>>> = Arc::default();
    let mut running = Vec::new();
    for replica in 0..3 {
        let mut registry = Registry::new();
        let fires = Arc::clone(&fires);
        let start = now_ms() / 1000 * 1000;
        registry
            .timer(
                "tick",
                Schedule::new(start, Frequency::Custom { every_secs: 1 }),
                move |_ctx: Context| {
                    let fires = Arc::clone(&fires);
                    async move {
                        fires.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    }
                },
            )
            .unwrap();
        let inner = store(SHARED_REDIS, &prefix, Duration::from_secs(20)).occurrence_claim();
        let claimed = Arc::clone(&claimed);
        let claim: OccurrenceClaim = Arc::new(move |name, at| {
            let (inner, claimed) = (Arc::clone(&inner), Arc::clone(&claimed));
            let name = name.to_owned();
            Box::pin(async move {
                let mine = inner(&name, at).await;
                let mut claimed = claimed.lock();
                let entry = claimed.entry(at).or_default();
                if mine {
                    entry.push(replica);
                }
                mine
            })
        });
        let dispatcher = Dispatcher::new(Arc::new(registry), TaskLimits::default());
        running.push(tokio::spawn(scheduler::run(
            dispatcher,
            APP.to_owned(),
            Clock::system(),
            Some(claim),
            stop.clone(),
        )));
    }
    // A minute of a 1-second timer (real time: the Redis client's own
    // timeouts do not follow paused time).
    tokio::time::sleep(Duration::from_millis(60_500)).await;
    stop.cancel();
    join_all(running).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let claimed = claimed.lock();
    assert!(claimed.len() >= 55, "occurrences seen: {}", claimed.len());
    for (at, by) in claimed.iter() {
        assert_eq!(by.len(), 1, "occurrence {at} claimed by {by:?}");
    }
    assert_eq!(
        fires.load(Ordering::SeqCst),
        claimed.len(),
        "each fired once"
    );
}
