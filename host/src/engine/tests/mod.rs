//! The engine in-process: run, resume, rollback, in-flight settlement and every failure
//! policy, with a fake transport and strategy, and paused time (soaks and retries take no
//! real time). No wasm is built and no simulator started.

mod analysis;
mod harness;

use crate::engine::{InFlight, InFlightChoices};
use crate::journal::{Direction, Status, TargetState};
use crate::plugin::model::DecisionKind;
use harness::{Act, Harness, RELEASE_DIR};

fn answer(target: &str, choice: InFlight) -> InFlightChoices {
    let mut c = InFlightChoices::default();
    c.per_target.insert(target.into(), choice);
    c
}

#[tokio::test(start_paused = true)]
async fn a_clean_run_updates_every_target_running_each_step_once() {
    let h = Harness::new(5, 2, RELEASE_DIR, DecisionKind::Proceed);
    let o = h.run().drive().await.unwrap();
    assert_eq!(o.status, Status::Completed, "{}", o.reason);
    assert_eq!(h.on_new().len(), 5);
    for t in 1..=5 {
        for s in ["fetch", "stop", "switch", "start", "health"] {
            assert_eq!(h.transport.count(&format!("run {s} t{t}")), 1, "{s} t{t}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_first_wave_failure_rolls_that_wave_back_and_stops() {
    let h = Harness::new(5, 2, RELEASE_DIR, DecisionKind::Proceed);
    h.transport.at("run start t1", Act::Fail);
    let o = h.run().drive().await.unwrap();
    assert_eq!(o.status, Status::RolledBack, "{}", o.reason);
    let s = h.states();
    assert_eq!(s["t1"], TargetState::Failed);
    assert_eq!(s["t2"], TargetState::RolledBack);
    for t in ["t3", "t4", "t5"] {
        assert_eq!(s[t], TargetState::Pending, "{t}");
        assert_eq!(h.transport.count(&format!("run fetch {t}")), 0);
    }
    // t1 undid stop and switch once each (start failed, so it is not undone).
    assert_eq!(h.transport.count("undo switch t1"), 1);
    assert_eq!(h.transport.count("undo stop t1"), 1);
    assert_eq!(h.transport.count("undo start t1"), 0);
}

#[tokio::test(start_paused = true)]
async fn later_failures_follow_the_policy() {
    for (policy, status) in [
        (DecisionKind::Proceed, Status::CompletedWithFailures),
        (DecisionKind::Pause, Status::Paused),
        (DecisionKind::Rollback, Status::RolledBack),
        (DecisionKind::Abort, Status::Aborted),
    ] {
        let h = Harness::new(6, 2, RELEASE_DIR, policy);
        h.transport.at("run health t3", Act::Fail);
        let o = h.run().drive().await.unwrap();
        assert_eq!(o.status, status, "{policy:?}: {}", o.reason);
        let s = h.states();
        assert_eq!(s["t3"], TargetState::Failed, "{policy:?}");
        let expect_first = if policy == DecisionKind::Rollback {
            TargetState::RolledBack
        } else {
            TargetState::Updated
        };
        assert_eq!(s["t1"], expect_first, "{policy:?}");
        let rest = if policy == DecisionKind::Proceed {
            TargetState::Updated
        } else {
            TargetState::Pending
        };
        assert_eq!(s["t5"], rest, "{policy:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn on_failure_complete_leaves_later_failures_as_they_are_and_completes() {
    let h = Harness::new(6, 2, RELEASE_DIR, DecisionKind::Proceed);
    h.strategy
        .keep_failed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    h.transport.at("run health t3", Act::Fail);
    let o = h.run().drive().await.unwrap();
    assert_eq!(o.status, Status::CompletedWithFailures, "{}", o.reason);
    assert!(
        o.reason.contains("left as they are for the operator") && o.reason.contains("t3"),
        "{}",
        o.reason
    );
    let s = h.states();
    assert_eq!(s["t3"], TargetState::NeedsAttention);
    for t in ["t1", "t2", "t4", "t5", "t6"] {
        assert_eq!(s[t], TargetState::Updated, "{t}");
    }
    // Nothing of t3 was undone: it stays on the new version for the operator.
    for step in ["stop", "switch", "start"] {
        assert_eq!(h.transport.count(&format!("undo {step} t3")), 0, "{step}");
    }
    // An explicit rollback later still undoes it, once.
    let o = h.rollback().await.unwrap();
    assert_eq!(o.status, Status::RolledBack, "{}", o.reason);
    assert_eq!(h.transport.count("undo switch t3"), 1);
    assert_eq!(h.states()["t3"], TargetState::Failed);
}

#[tokio::test(start_paused = true)]
async fn on_failure_complete_still_rolls_back_a_first_wave_failure() {
    let h = Harness::new(4, 2, RELEASE_DIR, DecisionKind::Proceed);
    h.strategy
        .keep_failed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    h.transport.at("run start t1", Act::Fail);
    let o = h.run().drive().await.unwrap();
    assert_eq!(o.status, Status::RolledBack, "{}", o.reason);
    assert_eq!(h.transport.count("undo switch t1"), 1);
    assert_eq!(h.states()["t1"], TargetState::Failed);
}

#[tokio::test(start_paused = true)]
async fn a_crash_in_a_non_idempotent_step_pauses_and_the_answer_is_obeyed() {
    // One target per wave: t3 is the only one in flight when it "crashes".
    let h = Harness::new(4, 1, RELEASE_DIR, DecisionKind::Proceed);
    h.transport.at("run start t3", Act::Crash);
    assert!(h.until_crash(h.run().drive()).await.is_none());
    assert_eq!(h.states()["t3"], TargetState::Running);
    let o = h.resume(&InFlightChoices::default()).await;
    assert_eq!(o.status, Status::Paused);
    assert!(
        o.reason.contains("step `start` on target `t3`"),
        "{}",
        o.reason
    );
    let o = h.resume(&answer("t3", InFlight::Done)).await;
    assert_eq!(o.status, Status::Completed, "{}", o.reason);
    assert_eq!(h.transport.count("run start t3"), 1, "never run twice");
    assert_eq!(h.on_new().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_killed_rollback_is_resumed_as_a_rollback_never_forward() {
    // Waves [t1 t2] [t3 t4] [t5]: the rollback starts with t5 alone.
    let h = Harness::new(5, 2, RELEASE_DIR, DecisionKind::Proceed);
    assert_eq!(h.run().drive().await.unwrap().status, Status::Completed);
    let forward_calls = h.transport.calls.lock().unwrap().len();
    // The rollback dies in one of its first undos.
    h.transport.at("undo switch t5", Act::Crash);
    assert!(h.until_crash(h.rollback()).await.is_none());
    let row = h.env.journal.rollout(h.id).unwrap();
    assert_eq!(row.direction, Direction::Rollback);
    let o = h.resume(&InFlightChoices::default()).await;
    assert_eq!(o.status, Status::RolledBack, "{}", o.reason);
    for (t, s) in h.states() {
        assert_eq!(s, TargetState::RolledBack, "{t}");
    }
    let calls = h.transport.calls.lock().unwrap().clone();
    assert!(
        calls[forward_calls..]
            .iter()
            .all(|c| c.starts_with("undo ")),
        "nothing ran forward after the rollback began: {calls:?}"
    );
    for t in 1..=5 {
        assert_eq!(h.transport.count(&format!("undo start t{t}")), 1, "t{t}");
        assert_eq!(h.transport.count(&format!("undo stop t{t}")), 1, "t{t}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_non_idempotent_undo_in_flight_is_not_rerun_without_asking() {
    for (choice, runs) in [(InFlight::Done, 1), (InFlight::Retry, 2)] {
        let h = Harness::new(3, 1, RELEASE_DIR, DecisionKind::Proceed);
        assert_eq!(h.run().drive().await.unwrap().status, Status::Completed);
        h.transport.at("undo start t2", Act::Crash);
        assert!(h.until_crash(h.rollback()).await.is_none());
        // t3 (the newest wave) was fully undone before the crash: its state says so, whatever
        // the target row says.
        assert_eq!(h.states()["t3"], TargetState::RolledBack);
        let o = h.resume(&InFlightChoices::default()).await;
        assert_eq!(o.status, Status::Paused, "{}", o.reason);
        assert!(
            o.reason.contains("the undo of step `start` on target `t2`"),
            "{}",
            o.reason
        );
        assert_eq!(h.transport.count("undo start t2"), 1);
        let o = h.resume(&answer("t2", choice)).await;
        assert_eq!(o.status, Status::RolledBack, "{choice:?}: {}", o.reason);
        assert_eq!(h.transport.count("undo start t2"), runs, "{choice:?}");
        assert_eq!(h.transport.count("undo stop t2"), 1);
        assert!(h.states().values().all(|s| *s == TargetState::RolledBack));
    }
}

#[tokio::test(start_paused = true)]
async fn an_idempotent_undo_in_flight_runs_again_without_asking() {
    let h = Harness::new(2, 1, RELEASE_DIR, DecisionKind::Proceed);
    assert_eq!(h.run().drive().await.unwrap().status, Status::Completed);
    h.transport.at("undo switch t2", Act::Crash);
    assert!(h.until_crash(h.rollback()).await.is_none());
    let o = h.resume(&InFlightChoices::default()).await;
    assert_eq!(o.status, Status::RolledBack, "{}", o.reason);
    assert_eq!(h.transport.count("undo switch t2"), 2);
}

#[tokio::test(start_paused = true)]
async fn an_undo_answered_failed_leaves_the_target_for_the_operator() {
    let h = Harness::new(2, 1, RELEASE_DIR, DecisionKind::Proceed);
    assert_eq!(h.run().drive().await.unwrap().status, Status::Completed);
    h.transport.at("undo start t2", Act::Crash);
    assert!(h.until_crash(h.rollback()).await.is_none());
    let o = h.resume(&answer("t2", InFlight::Failed)).await;
    assert_eq!(
        h.states()["t2"],
        TargetState::NeedsAttention,
        "{}",
        o.reason
    );
    assert_eq!(h.transport.count("undo start t2"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_signal_stops_new_steps_lets_those_in_flight_finish_and_resume_goes_on() {
    let h = Harness::new(4, 2, RELEASE_DIR, DecisionKind::Proceed);
    h.transport.at("run start t1", Act::Hold);
    let run = h.run();
    let interrupt = run.interrupter();
    let driving = tokio::spawn(run.drive());
    h.transport.held.notified().await;
    interrupt();
    h.transport.release.notify_one();
    let o = driving.await.unwrap().unwrap();
    assert_eq!(o.status, Status::Interrupted, "{}", o.reason);
    assert!(o.reason.contains("interrupted by SIGTERM"), "{}", o.reason);
    // The step in flight finished and was journaled; nothing after it started.
    assert_eq!(h.transport.count("run start t1"), 1);
    assert_eq!(h.transport.count("run health t1"), 0);
    assert_eq!(h.transport.count("run fetch t3"), 0);
    assert_eq!(h.states()["t1"], TargetState::Running);
    let o = h.resume(&InFlightChoices::default()).await;
    assert_eq!(o.status, Status::Completed, "{}", o.reason);
    for t in 1..=4 {
        for s in ["stop", "start"] {
            assert_eq!(h.transport.count(&format!("run {s} t{t}")), 1, "{s} t{t}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_signal_during_a_rollback_leaves_it_to_resume_as_a_rollback() {
    let h = Harness::new(3, 1, RELEASE_DIR, DecisionKind::Proceed);
    assert_eq!(h.run().drive().await.unwrap().status, Status::Completed);
    h.transport.at("undo switch t3", Act::Hold);
    let run = h.run();
    let interrupt = run.interrupter();
    let env = h.env.clone();
    let id = h.id;
    let rolling = tokio::spawn(async move { crate::engine::rollback_run(&env, id, run).await });
    h.transport.held.notified().await;
    interrupt();
    h.transport.release.notify_one();
    let o = rolling.await.unwrap().unwrap();
    assert_eq!(o.status, Status::Interrupted, "{}", o.reason);
    assert!(o.reason.contains("goes on rolling back"), "{}", o.reason);
    assert_eq!(
        h.transport.count("undo stop t3"),
        0,
        "no undo started after the signal"
    );
    let o = h.resume(&InFlightChoices::default()).await;
    assert_eq!(o.status, Status::RolledBack, "{}", o.reason);
    assert!(h.states().values().all(|s| *s == TargetState::RolledBack));
    assert_eq!(h.transport.count("undo switch t3"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_host_that_does_not_come_back_fails_its_targets_and_the_journal_names_it() {
    let h = Harness::new(4, 2, RELEASE_DIR, DecisionKind::Proceed);
    h.transport.at("run stop t2", Act::Down("h2"));
    h.transport.at("undo stop t2", Act::Down("h2"));
    let o = h.run().drive().await.unwrap();
    let s = h.states();
    assert_eq!(s["t2"], TargetState::Failed, "{}", o.reason);
    assert_eq!(s["t1"], TargetState::RolledBack, "{}", o.reason);
    let lost = h.env.journal.lost_hosts(h.id).unwrap();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0].host, "h2");
    assert!(lost[0].reason.contains("run stop t2"), "{lost:?}");
    // Nothing of t2 completed, so nothing of it is undone.
    assert_eq!(h.transport.count("undo stop t2"), 0);
}

#[tokio::test(start_paused = true)]
async fn an_undo_on_a_lost_host_needs_attention_and_a_later_rollback_finishes_it() {
    let h = Harness::new(2, 1, RELEASE_DIR, DecisionKind::Proceed);
    assert_eq!(h.run().drive().await.unwrap().status, Status::Completed);
    h.transport.at("undo start t2", Act::Down("h2"));
    let o = h.rollback().await.unwrap();
    assert_eq!(
        h.states()["t2"],
        TargetState::NeedsAttention,
        "{}",
        o.reason
    );
    assert_eq!(h.env.journal.lost_hosts(h.id).unwrap()[0].host, "h2");
    // The host is back: the rollback goes on from the undo that failed.
    h.transport.heal();
    let o = h.rollback().await.unwrap();
    assert_eq!(o.status, Status::RolledBack, "{}", o.reason);
    assert_eq!(h.transport.count("undo start t2"), 2);
    assert_eq!(h.transport.count("undo stop t2"), 1);
}

#[tokio::test(start_paused = true)]
async fn an_undo_whose_host_came_back_stays_in_flight_for_resume() {
    let h = Harness::new(2, 1, RELEASE_DIR, DecisionKind::Proceed);
    assert_eq!(h.run().drive().await.unwrap().status, Status::Completed);
    h.transport.at("undo start t2", Act::Lost);
    let o = h.rollback().await.unwrap();
    assert_eq!(o.status, Status::Interrupted, "{}", o.reason);
    assert!(o.reason.contains("the undo of `start`"), "{}", o.reason);
    assert_eq!(h.transport.count("undo stop t2"), 0);
    let o = h.resume(&InFlightChoices::default()).await;
    assert_eq!(o.status, Status::Paused, "{}", o.reason);
    let o = h.resume(&answer("t2", InFlight::Done)).await;
    assert_eq!(o.status, Status::RolledBack, "{}", o.reason);
    assert_eq!(h.transport.count("undo start t2"), 1);
    assert_eq!(h.transport.count("undo stop t2"), 1);
}

#[tokio::test(start_paused = true)]
async fn an_abort_during_a_soak_leaves_the_rollout_at_the_soak_not_past_it() {
    let mut h = Harness::new(4, 2, RELEASE_DIR, DecisionKind::Proceed);
    h.plan
        .stages
        .insert(1, crate::engine::plan::XStage::Soak { seconds: 600 });
    h.env
        .journal
        .set_plan(h.id, &serde_json::to_string(&h.plan).unwrap())
        .unwrap();
    let driving = tokio::spawn(h.run().drive());
    // Well into the soak (paused time: the first wave takes none).
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    h.env.journal.request_abort(h.id).unwrap();
    let o = driving.await.unwrap().unwrap();
    assert_eq!(o.status, Status::Aborted, "{}", o.reason);
    assert_eq!(
        h.env.journal.rollout(h.id).unwrap().stage,
        1,
        "still at the soak"
    );
    assert!(o.reason.contains("before stage 2"), "{}", o.reason);
    assert_eq!(h.transport.count("run stop t3"), 0);
}
