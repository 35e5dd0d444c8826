//! The task that is the simulated modem: it owns the interpreter and the current [`Port`], and
//! turns the interpreter's effects and the handle's requests into timed events (network delay,
//! status reports, noise, unplug and replug).
//!
//! Every timer is a small task that sleeps and then posts an [`Event`] back, tagged with the
//! pty generation it belongs to, so an answer meant for a pty that is gone is dropped rather than
//! sent to its successor.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, oneshot};

use super::interpreter::{self, Effect, Interpreter, Profile, Submission};
use super::network;
use super::port::{Counters, Port, Write, lock};
use super::pty::Pty;
use super::{Control, SimError, SimHandle, SimOptions, SubmittedPdu};
use crate::pdu;

/// How long a resetting modem takes, after its `OK`, to leave the bus. Real modems take
/// longer; the point is that the `OK` reaches the client (a pty drops what the client has not
/// read when the master closes).
const LEAVE_BUS_DELAY: Duration = Duration::from_millis(50);
/// How long to wait before trying again when a new pty cannot be opened.
const REOPEN_RETRY: Duration = Duration::from_millis(500);
/// How often a drifting signal moves.
const DRIFT_INTERVAL: Duration = Duration::from_secs(5);
/// How far (in `<rssi>` steps of 2 dB) a drifting signal strays from where it started.
const DRIFT_RANGE: i16 = 3;

/// What the reader, the writer and the timers post to the device task.
#[derive(Debug)]
enum Event {
    Input {
        generation: u64,
        bytes: Vec<u8>,
    },
    SubmitDone {
        generation: u64,
    },
    Report {
        mr: u8,
        recipient: pdu::Address,
        status: u8,
    },
    AckTimeout {
        generation: u64,
        number: u64,
    },
    Replug {
        plug: u64,
    },
    /// The network tries again to deliver what it kept (not tied to a pty: the network keeps
    /// trying while the modem is away).
    NetworkRetry,
    /// The modem found the network after power-on.
    Attached {
        generation: u64,
    },
    Restart {
        generation: u64,
    },
    Noise {
        chain: u64,
    },
    UssdAnswer {
        generation: u64,
        number: u64,
    },
    Ring {
        generation: u64,
        number: u64,
    },
    Drift,
}

struct Device {
    options: SimOptions,
    interpreter: Interpreter,
    port: Option<Port>,
    /// Bumped whenever the pty goes away; stale events carry an older number.
    generation: u64,
    /// Bumped on each unplug, so only the latest replug timer acts.
    plug: u64,
    hung: bool,
    /// The live chain of noise timers.
    noise_chain: u64,
    /// The signal now (it drifts around `options.rssi` with `signal_drift`).
    rssi: u8,
    submitting: Option<Submission>,
    /// Answers to submits are held (see [`SimHandle::hold_submits`]).
    hold_submits: bool,
    /// The network is done with the part in `submitting`, but its answer is held.
    submit_due: bool,
    submitted: Vec<SubmittedPdu>,
    concat_reference: u16,
    events: mpsc::UnboundedSender<Event>,
    path: Arc<Mutex<std::path::PathBuf>>,
    counters: Arc<Counters>,
    rng: StdRng,
}

pub(crate) async fn spawn(options: SimOptions) -> std::io::Result<SimHandle> {
    let pty = Arc::new(Pty::open(options.link.as_deref())?);
    let (control_tx, control_rx) = mpsc::channel(64);
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let path = Arc::new(Mutex::new(pty.path()));
    let counters = Arc::new(Counters::default());
    let profile = Profile {
        manufacturer: "smsgate".to_string(),
        model: "Simulated GSM modem".to_string(),
        revision: concat!("SIM-", env!("CARGO_PKG_VERSION")).to_string(),
        imei: "356938035643809".to_string(),
        imsi: "502129876543210".to_string(),
        echo: options.echo,
        notify: options.notify,
        reports: options.reports,
        capacity: options.capacity,
        first_index: options.first_index,
        smsc: options.smsc.clone(),
        operator: options.operator.clone(),
        rssi: options.rssi.min(31),
    };
    let mut interpreter = Interpreter::new(
        profile,
        options.pin.clone(),
        options.puk.clone(),
        options.puk_locked,
    );
    drop(interpreter.set_network(options.registered));
    drop(interpreter.set_storage_full(options.storage_full));
    interpreter.set_cms_error_always(options.cms_error);
    interpreter.set_attach_delayed(!options.attach_time.is_zero());
    interpreter.set_quirks(options.quirks);
    for (code, answer) in &options.ussd {
        interpreter.set_ussd_answer(code, Some(answer.clone()));
    }
    for code in &options.ussd_menus {
        interpreter.set_ussd_menu(code, true);
    }
    interpreter.set_ussd_encoding(options.ussd_encoding);
    let rng = match options.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    };
    let hung = options.hang;
    let mut device = Device {
        options,
        interpreter,
        port: None,
        generation: 0,
        plug: 0,
        hung,
        noise_chain: 0,
        rssi: 0,
        submitting: None,
        hold_submits: false,
        submit_due: false,
        submitted: Vec::new(),
        concat_reference: 0,
        events: events_tx,
        path: path.clone(),
        counters: counters.clone(),
        rng,
    };
    device.concat_reference = device.rng.random();
    device.rssi = device.options.rssi.min(31);
    if device.options.signal_drift {
        device.schedule(DRIFT_INTERVAL, Event::Drift);
    }
    device.attach(pty)?;
    if device.options.urc_noise {
        device.start_noise();
    }
    tracing::info!(path = %device.path_now().display(), "simulated modem ready");
    tokio::spawn(device.run(control_rx, events_rx));
    Ok(SimHandle {
        control: control_tx,
        path,
        stats: counters,
    })
}

impl Device {
    async fn run(
        mut self,
        mut control: mpsc::Receiver<Control>,
        mut events: mpsc::UnboundedReceiver<Event>,
    ) {
        loop {
            tokio::select! {
                request = control.recv() => match request {
                    Some(Control::Shutdown(reply)) => {
                        self.detach().await;
                        let _ = reply.send(());
                        break;
                    }
                    Some(request) => self.control(request).await,
                    None => break,
                },
                Some(event) = events.recv() => self.event(event).await,
            }
        }
        self.detach().await;
        tracing::info!("simulated modem stopped");
    }

    fn path_now(&self) -> std::path::PathBuf {
        lock(&self.path).clone()
    }

    /// Makes `pty` the live port: starts its reader and line workers.
    fn attach(&mut self, pty: Arc<Pty>) -> std::io::Result<()> {
        let events = self.events.clone();
        let generation = self.generation;
        let deliver =
            Box::new(move |bytes| events.send(Event::Input { generation, bytes }).is_ok());
        let port = Port::start(
            pty.clone(),
            self.options.baud,
            deliver,
            self.counters.clone(),
        )?;
        *lock(&self.path) = pty.path();
        tracing::debug!(slave = %pty.slave_path().display(), fd = pty.fd(), "pty open");
        self.port = Some(port);
        Ok(())
    }

    /// Pulls the plug: the pty closes (its link goes), the generation moves on.
    async fn detach(&mut self) {
        if let Some(port) = self.port.take() {
            port.close().await;
        }
        self.generation += 1;
        self.submitting = None;
        self.submit_due = false;
        let effects = self.interpreter.power_off();
        self.apply(effects);
    }

    async fn control(&mut self, request: Control) {
        match request {
            Control::InjectSms { from, text, reply } => {
                let _ = reply.send(self.inject_sms(&from, &text));
            }
            Control::InjectPdu { pdu } => {
                let effects = self.interpreter.incoming_sms(pdu);
                self.apply(effects);
            }
            Control::InjectReport {
                mr,
                status,
                recipient,
                reply,
            } => {
                let recipient = recipient.or_else(|| {
                    self.submitted
                        .iter()
                        .rev()
                        .find(|part| part.mr == mr)
                        .map(|part| part.submit.recipient.clone())
                });
                let result = match recipient {
                    Some(recipient) => {
                        self.deliver_report(mr, &recipient, status);
                        Ok(())
                    }
                    None => Err(SimError::UnknownReference(mr)),
                };
                let _ = reply.send(result);
            }
            Control::Submitted(reply) => {
                let _ = reply.send(self.submitted.clone());
            }
            Control::CmsError(Some(code)) => self.interpreter.push_cms_error(code),
            Control::CmsError(None) => self.interpreter.clear_cms_errors(),
            Control::CmsErrorAlways(code) => self.interpreter.set_cms_error_always(code),
            Control::Hang(on) => {
                self.hung = on;
                tracing::info!(on, "simulated modem hang");
            }
            Control::HoldSubmits(on) => {
                self.hold_submits = on;
                tracing::info!(on, "simulated submit answers held");
                if !on && std::mem::take(&mut self.submit_due) {
                    self.finish_submit();
                }
            }
            Control::Quirk(quirk, on) => {
                let mut quirks = self.interpreter.quirks();
                quirks.set(quirk, on);
                self.interpreter.set_quirks(quirks);
                tracing::info!(%quirk, on, "simulated modem quirk");
            }
            Control::Unplug(for_, reply) => {
                self.unplug(for_).await;
                let _ = reply.send(());
            }
            Control::Registered(on) => {
                let effects = self.interpreter.set_network(on);
                self.apply(effects);
            }
            Control::StorageFull(on) => {
                let effects = self.interpreter.set_storage_full(on);
                self.apply(effects);
            }
            Control::Noise(on) => {
                let was = self.options.urc_noise;
                self.options.urc_noise = on;
                if on && !was {
                    self.start_noise();
                }
            }
            Control::NetworkDelay(delay) => self.options.network_delay = delay,
            Control::ReportDelay(delay) => self.options.report_delay = delay,
            Control::ReportStatus(status) => self.options.report_status = status,
            Control::Stored(reply) => {
                let _ = reply.send(self.interpreter.storage().sms.entries().to_vec());
            }
            Control::StoredReports(reply) => {
                let _ = reply.send(self.interpreter.storage().reports.entries().to_vec());
            }
            Control::HeldForRetry(reply) => {
                let _ = reply.send(self.interpreter.held_for_retry());
            }
            Control::Submitting(reply) => {
                let _ = reply.send(self.submitting.is_some());
            }
            Control::Connected(reply) => {
                let _ = reply.send(self.port.as_ref().is_some_and(|p| p.pty().has_client()));
            }
            Control::UssdAnswer(code, answer) => {
                tracing::info!(code, known = answer.is_some(), "simulated USSD answer set");
                self.interpreter.set_ussd_answer(&code, answer);
            }
            Control::UssdEncoding(encoding) => self.interpreter.set_ussd_encoding(encoding),
            Control::UssdRequests(reply) => {
                let _ = reply.send(self.interpreter.ussd_requests().to_vec());
            }
            Control::Call {
                number,
                rings,
                reply,
            } => {
                let result = match self.interpreter.incoming_call(number, rings) {
                    Some(effects) => {
                        self.apply(effects);
                        Ok(())
                    }
                    None => Err(SimError::Unreachable),
                };
                let _ = reply.send(result);
            }
            Control::Calls(reply) => {
                let _ = reply.send(self.interpreter.calls().to_vec());
            }
            Control::Rssi(rssi) => {
                self.options.rssi = rssi.min(31);
                self.rssi = self.options.rssi;
                self.interpreter.set_rssi(self.rssi);
            }
            Control::Shutdown(reply) => {
                let _ = reply.send(());
            }
        }
    }

    fn inject_sms(&mut self, from: &str, text: &str) -> Result<(), SimError> {
        self.concat_reference = self.concat_reference.wrapping_add(1);
        let parts = network::deliver(self.interpreter.smsc(), from, text, self.concat_reference)?;
        for part in parts {
            let part = self.interpreter.quirks().network_pdu(part);
            let effects = self.interpreter.incoming_sms(part);
            self.apply(effects);
        }
        Ok(())
    }

    fn deliver_report(&mut self, mr: u8, recipient: &pdu::Address, status: u8) {
        match network::status_report(self.interpreter.smsc(), mr, recipient, status) {
            Ok(report) => {
                let report = self.interpreter.quirks().network_pdu(report);
                let effects = self.interpreter.incoming_report(report);
                self.apply(effects);
            }
            Err(error) => tracing::warn!(%error, "cannot encode a status report"),
        }
    }

    async fn event(&mut self, event: Event) {
        match event {
            Event::Input { generation, bytes } if generation == self.generation => {
                if self.hung {
                    return;
                }
                // Now and then a URC slips in between a command and its reply.
                if self.options.urc_noise && bytes.contains(&b'\r') && self.rng.random_bool(0.2) {
                    self.noise();
                }
                let effects = self.interpreter.receive(&bytes);
                self.apply(effects);
            }
            Event::SubmitDone { generation } if generation == self.generation => {
                if self.hold_submits {
                    self.submit_due = self.submitting.is_some();
                } else {
                    self.finish_submit();
                }
            }
            Event::Report {
                mr,
                recipient,
                status,
            } => self.deliver_report(mr, &recipient, status),
            Event::AckTimeout { generation, number } if generation == self.generation => {
                let effects = self.interpreter.ack_timeout(number);
                self.apply(effects);
            }
            Event::Replug { plug } if plug == self.plug && self.port.is_none() => self.replug(),
            Event::NetworkRetry => {
                let effects = self.interpreter.retry_held();
                self.apply(effects);
            }
            Event::Attached { generation } if generation == self.generation => {
                let effects = self.interpreter.attached();
                self.apply(effects);
            }
            Event::Restart { generation } if generation == self.generation => {
                tracing::info!("simulated modem restarting (AT+CFUN=1,1)");
                self.unplug(self.options.restart_time).await;
            }
            Event::UssdAnswer { generation, number } if generation == self.generation => {
                let effects = self.interpreter.ussd_answer(number);
                self.apply(effects);
            }
            Event::Ring { generation, number } if generation == self.generation => {
                let effects = self.interpreter.ring(number);
                self.apply(effects);
            }
            Event::Drift => {
                // A random walk of one step at most, kept near where it started.
                let base = i16::from(self.options.rssi);
                let step: i16 = self.rng.random_range(-1..=1);
                let next =
                    (i16::from(self.rssi) + step).clamp(base - DRIFT_RANGE, base + DRIFT_RANGE);
                self.rssi = next.clamp(0, 31) as u8;
                self.interpreter.set_rssi(self.rssi);
                self.schedule(DRIFT_INTERVAL, Event::Drift);
            }
            Event::Noise { chain } if chain == self.noise_chain && self.options.urc_noise => {
                self.noise();
                self.schedule_noise();
            }
            _ => {}
        }
    }

    fn finish_submit(&mut self) {
        let Some(submission) = self.submitting.take() else {
            return;
        };
        if let (Ok(mr), Some(mut submit)) = (submission.result, submission.submit) {
            submit.message_reference = mr;
            if submit.status_report_request {
                self.schedule(
                    self.options.report_delay,
                    Event::Report {
                        mr,
                        recipient: submit.recipient.clone(),
                        status: self.options.report_status,
                    },
                );
            }
            self.submitted.push(SubmittedPdu {
                pdu_hex: interpreter::hex(&submission.pdu),
                submit,
                mr,
                at: std::time::Instant::now(),
            });
        }
        let effects = self.interpreter.finish_submit();
        self.apply(effects);
    }

    fn apply(&mut self, effects: Vec<Effect>) {
        let mut effects = effects.into_iter().peekable();
        while let Some(effect) = effects.next() {
            match effect {
                // The output that completes a `+CMGS` answer goes to the line as one, so the
                // line can note when its last byte went (see `port::Write::Answer`).
                Effect::Output(bytes) if matches!(effects.peek(), Some(Effect::SubmitAnswered)) => {
                    effects.next();
                    self.answer(bytes);
                }
                Effect::Output(bytes) => self.output(bytes),
                Effect::Submitted(submission) => {
                    tracing::debug!(result = ?submission.result, "part submitted");
                    self.submitting = Some(*submission);
                    self.submit_due = false;
                    // Real modems emit URCs while the network works on a submit.
                    if self.options.urc_noise && self.rng.random_bool(0.5) {
                        self.noise();
                    }
                    let generation = self.generation;
                    let jitter = self.options.network_delay_jitter;
                    let delay = if jitter.is_zero() {
                        self.options.network_delay
                    } else {
                        self.options.network_delay + jitter.mul_f64(self.rng.random::<f64>())
                    };
                    self.schedule(delay, Event::SubmitDone { generation });
                }
                Effect::AwaitAck(number) => {
                    let generation = self.generation;
                    self.schedule(
                        self.options.ack_timeout,
                        Event::AckTimeout { generation, number },
                    );
                }
                Effect::UssdRequested(number) => {
                    let generation = self.generation;
                    self.schedule(
                        self.options.ussd_delay,
                        Event::UssdAnswer { generation, number },
                    );
                }
                Effect::Ring(number) => {
                    let generation = self.generation;
                    self.schedule(
                        self.options.ring_interval,
                        Event::Ring { generation, number },
                    );
                }
                Effect::RetryLater => {
                    self.schedule(self.options.network_retry, Event::NetworkRetry);
                }
                Effect::Attaching => {
                    let generation = self.generation;
                    self.schedule(self.options.attach_time, Event::Attached { generation });
                }
                Effect::SubmitAnswered => self.answer(Vec::new()),
                Effect::Restart => {
                    // Let the `OK` out before the modem leaves the bus.
                    if let Some(port) = &self.port {
                        let (flushed, done) = oneshot::channel();
                        port.write(Write::Flushed(flushed));
                        let events = self.events.clone();
                        let generation = self.generation;
                        tokio::spawn(async move {
                            let _ = done.await;
                            tokio::time::sleep(LEAVE_BUS_DELAY).await;
                            let _ = events.send(Event::Restart { generation });
                        });
                    }
                }
            }
        }
    }

    fn output(&mut self, bytes: Vec<u8>) {
        if self.hung {
            return;
        }
        if let Some(port) = &self.port {
            port.write(Write::Bytes(bytes));
        }
    }

    /// The end of a `+CMGS` answer (or the whole of it).
    fn answer(&mut self, bytes: Vec<u8>) {
        if self.hung {
            return;
        }
        if let Some(port) = &self.port {
            port.write(Write::Answer(bytes));
        }
    }

    fn noise(&mut self) {
        let line = network::noise_line(&mut self.rng);
        self.output(format!("\r\n{line}\r\n").into_bytes());
    }

    /// Starts a new chain of noise timers; an older chain stops at its next tick.
    fn start_noise(&mut self) {
        self.noise_chain += 1;
        self.schedule_noise();
    }

    fn schedule_noise(&mut self) {
        let mean = self.options.noise_interval.max(Duration::from_millis(10));
        let delay = mean.mul_f64(self.rng.random_range(0.2..1.8));
        let chain = self.noise_chain;
        self.schedule(delay, Event::Noise { chain });
    }

    fn schedule(&self, delay: Duration, event: Event) {
        let events = self.events.clone();
        if delay.is_zero() {
            let _ = events.send(event);
            return;
        }
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = events.send(event);
        });
    }

    async fn unplug(&mut self, for_: Duration) {
        tracing::info!(?for_, "simulated modem unplugged");
        self.detach().await;
        self.plug += 1;
        let plug = self.plug;
        self.schedule(for_, Event::Replug { plug });
    }

    fn replug(&mut self) {
        let attached =
            Pty::open(self.options.link.as_deref()).and_then(|pty| self.attach(Arc::new(pty)));
        match attached {
            Ok(()) => {
                // A power cycle cures a hang.
                self.hung = false;
                let effects = self.interpreter.power_on();
                self.apply(effects);
                tracing::info!(path = %self.path_now().display(), "simulated modem plugged in");
            }
            Err(error) => {
                tracing::warn!(%error, "cannot open a new pty; trying again");
                let plug = self.plug;
                self.schedule(REOPEN_RETRY, Event::Replug { plug });
            }
        }
    }
}
