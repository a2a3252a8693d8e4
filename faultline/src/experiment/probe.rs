//! Probes: each on its own thread, one request every interval from the experiment's start to its end, each
//! recorded as a [`Sample`] (when it started, whether it succeeded, how long it took, what came back).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::spec::Probe;

/// One request of a probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// When it was sent, since the experiment started.
    pub at: Duration,
    /// Whether it counts as a success.
    pub ok: bool,
    /// How long until the answer (or the failure).
    pub latency: Duration,
    /// The HTTP status, or why there is none.
    pub outcome: String,
}

/// A running probe.
pub struct Running {
    /// Its name.
    pub name: String,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Its samples so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Starts every probe; they run until `stop` is set (then [`finish`] joins them).
pub fn start(probes: &[Probe], started: Instant, stop: &Arc<AtomicBool>) -> Vec<Running> {
    probes
        .iter()
        .map(|probe| {
            let samples = Arc::new(Mutex::new(Vec::new()));
            let (probe_for_thread, samples_for_thread, stop) = (probe.clone(), samples.clone(), stop.clone());
            let thread = std::thread::Builder::new()
                .name(format!("faultline-probe-{}", probe.name))
                .spawn(move || run(&probe_for_thread, started, &stop, &samples_for_thread))
                .ok();
            Running { name: probe.name.clone(), samples, thread }
        })
        .collect()
}

/// Waits for the probes' threads (a request in flight finishes or times out first).
pub fn finish(probes: &mut [Running]) {
    for probe in probes {
        if let Some(thread) = probe.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(probe: &Probe, started: Instant, stop: &AtomicBool, samples: &Mutex<Vec<Sample>>) {
    let http = &probe.http;
    let agent = ureq::AgentBuilder::new().timeout(http.timeout.0).build();
    let body = match (&http.json, &http.body) {
        (Some(json), _) => Some(json.to_string()),
        (None, Some(body)) => Some(body.clone()),
        (None, None) => None,
    };
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let mut request = agent.request(&http.method, &http.url);
        for (name, value) in &http.headers {
            request = request.set(name, value);
        }
        if http.json.is_some() {
            request = request.set("Content-Type", "application/json");
        }
        let answer = match &body {
            Some(body) => request.send_string(body),
            None => request.call(),
        };
        let latency = sent.elapsed();
        let (status, outcome) = match answer {
            Ok(response) => {
                let status = response.status();
                // Read the body: a reused connection must not carry this answer's leftovers.
                let _ = response.into_string();
                (Some(status), status.to_string())
            }
            Err(ureq::Error::Status(status, response)) => {
                let _ = response.into_string();
                (Some(status), status.to_string())
            }
            Err(ureq::Error::Transport(error)) => (None, error.to_string()),
        };
        let ok = match (&http.ok_status, status) {
            (Some(wanted), Some(status)) => wanted.contains(&status),
            (None, Some(status)) => (200..300).contains(&status),
            (_, None) => false,
        };
        if let Ok(mut samples) = samples.lock() {
            samples.push(Sample { at: sent.duration_since(started), ok, latency, outcome });
        }
        next += http.interval.0;
        let now = Instant::now();
        if next < now {
            next = now; // a slow answer: the next request goes at once, no burst to catch up
        }
        // Sleep in short steps so the end of the experiment is not held up by a long interval.
        while !stop.load(Ordering::Relaxed) && Instant::now() < next {
            std::thread::sleep((next - Instant::now()).min(Duration::from_millis(50)));
        }
    }
}
