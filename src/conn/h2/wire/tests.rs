//! The connection state's unit tests: frames fed as a server would send them.
use super::*;

/// The frames of a server's first flight: SETTINGS, then a response to stream 1.
fn server_flight(max_streams: Option<u32>) -> Vec<u8> {
    let mut b = Vec::new();
    match max_streams {
        Some(m) => frame::put_settings(&mut b, &[(frame::SETTINGS_MAX_CONCURRENT_STREAMS, m)]),
        None => frame::put_settings(&mut b, &[]),
    }
    b
}

fn response(b: &mut Vec<u8>, stream: u32, body: &[u8]) {
    let mut block = Vec::new();
    hpack::put_field_indexed(&mut block, b":status", b"200");
    hpack::put_field(&mut block, b"x-a", b"1");
    frame::put_headers(b, stream, &block, body.is_empty(), 16_384);
    if !body.is_empty() {
        frame::put_head(b, body.len(), frame::DATA, frame::END_STREAM, stream);
        b.extend_from_slice(body);
    }
}

fn send(w: &Wire, slot: usize, wants: bool) {
    let blocks = hpack::Blocks::new([(&b":method"[..], &b"GET"[..])]);
    w.send(slot, &blocks, false, None, wants).unwrap();
}

#[test]
fn responses_end_their_streams_and_are_kept_when_wanted() {
    let w = Wire::new(2);
    send(&w, 0, true);
    send(&w, 1, false);
    let mut b = server_flight(None);
    response(&mut b, 3, b"");
    response(&mut b, 1, b"hello");
    let mut st = w.st.borrow_mut();
    // Split anywhere: only whole frames are used.
    let used = st.frames(&b[..b.len() - 3]).unwrap();
    assert!(used < b.len());
    assert_eq!(st.streams[1].outcome, Some(Outcome::Done));
    assert_eq!(st.streams[0].outcome, None);
    let used2 = st.frames(&b[used..]).unwrap();
    assert_eq!(used + used2, b.len());
    assert_eq!(st.streams[0].outcome, Some(Outcome::Done));
    assert_eq!(st.streams[0].status, 200);
    assert_eq!(st.streams[0].data, b"hello");
    assert!(st.streams[1].data.is_empty() && st.streams[1].spans.is_empty());
    assert!(st.ids.is_empty());
    drop(st);
    let mut seen = Vec::new();
    w.take_response(0, |f, body| {
        seen = f
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect();
        assert_eq!(body, b"hello");
    });
    assert_eq!(seen, vec![("x-a".to_string(), b"1".to_vec())]);
    // The SETTINGS were acknowledged.
    let out = &w.st.borrow().out;
    assert!(out
        .windows(9)
        .any(|f| f == [0, 0, 0, frame::SETTINGS, frame::ACK, 0, 0, 0, 0]));
}

#[test]
fn a_goaway_fails_the_streams_above_its_last_id_and_refuses_new_ones() {
    let w = Wire::new(3);
    for s in 0..3 {
        send(&w, s, false);
    }
    let mut b = server_flight(None);
    frame::put_goaway(&mut b, 3, frame::NO_ERROR);
    response(&mut b, 1, b"x");
    let mut st = w.st.borrow_mut();
    st.frames(&b).unwrap();
    assert_eq!(st.streams[0].outcome, Some(Outcome::Done));
    assert_eq!(st.streams[1].outcome, None);
    assert_eq!(st.streams[2].outcome, Some(Outcome::Unprocessed));
    drop(st);
    let waker = futures_noop();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(w.poll_open(2, &mut cx), Poll::Ready(Err(End::Goaway(0))));
}

#[test]
fn the_servers_stream_limit_holds_slots_back() {
    let w = Wire::new(3);
    let mut st = w.st.borrow_mut();
    st.frames(&server_flight(Some(1))).unwrap();
    drop(st);
    let waker = futures_noop();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(w.poll_open(0, &mut cx), Poll::Ready(Ok(())));
    send(&w, 0, false);
    assert_eq!(w.poll_open(1, &mut cx), Poll::Pending);
    assert_eq!(w.server_max(), Some(1));
    let mut b = Vec::new();
    frame::put_rst(&mut b, 1, frame::REFUSED_STREAM);
    w.st.borrow_mut().frames(&b).unwrap();
    assert_eq!(
        w.st.borrow().streams[0].outcome,
        Some(Outcome::Reset(frame::REFUSED_STREAM))
    );
    assert_eq!(w.poll_open(1, &mut cx), Poll::Ready(Ok(())));
}

#[test]
fn bodies_wait_for_the_servers_windows() {
    let w = Wire::new(1);
    let mut st = w.st.borrow_mut();
    st.frames(&server_flight(None)).unwrap();
    drop(st);
    let body = Bytes::from(vec![b'b'; 70_000]);
    let blocks = hpack::Blocks::new([(&b":method"[..], &b"POST"[..])]);
    assert_eq!(w.send(0, &blocks, false, Some(&body), false), Ok(true));
    let st = w.st.borrow();
    assert_eq!(st.send_window, 0);
    assert!(st.streams[0].body.is_some());
    assert!(st.unwritten.is_empty());
    drop(st);
    let mut b = Vec::new();
    frame::put_window_update(&mut b, 0, 10_000);
    frame::put_window_update(&mut b, 1, 10_000);
    w.st.borrow_mut().frames(&b).unwrap();
    let st = w.st.borrow();
    assert!(st.streams[0].body.is_none());
    assert_eq!(st.unwritten.len(), 1);
    assert_eq!(st.send_window, 65_535 + 10_000 - 70_000);
}

#[test]
fn an_early_response_cancels_the_rest_of_the_body() {
    let w = Wire::new(1);
    w.st.borrow_mut().frames(&server_flight(None)).unwrap();
    let body = Bytes::from(vec![b'b'; 70_000]);
    let blocks = hpack::Blocks::new([(&b":method"[..], &b"POST"[..])]);
    assert_eq!(w.send(0, &blocks, false, Some(&body), false), Ok(true));
    let mut b = Vec::new();
    response(&mut b, 1, b"");
    let mut st = w.st.borrow_mut();
    st.frames(&b).unwrap();
    assert_eq!(st.streams[0].outcome, Some(Outcome::Done));
    assert!(st.streams[0].body.is_none() && st.pending.is_empty());
    let mut rst = Vec::new();
    frame::put_rst(&mut rst, 1, frame::CANCEL);
    assert!(st.out.ends_with(&rst));
}

#[test]
fn frames_before_settings_and_oversized_ones_are_connection_errors() {
    let w = Wire::new(1);
    send(&w, 0, false);
    let mut b = Vec::new();
    response(&mut b, 1, b"");
    assert!(w.st.borrow_mut().frames(&b).is_err());
    assert_eq!(
        w.st.borrow().streams[0].outcome,
        Some(Outcome::Lost(ReadReason::Io))
    );
    let w = Wire::new(1);
    let mut b = server_flight(None);
    frame::put_head(&mut b, 20_000, frame::DATA, 0, 1);
    assert!(w.st.borrow_mut().frames(&b).is_err());
}

/// The run's request indexes its fields once the server's SETTINGS are in, and refers to
/// them after; a server that lowers its table size gets a size update and plain blocks.
#[test]
fn the_runs_request_uses_the_servers_table_while_it_may() {
    let blocks = hpack::Blocks::new([(&b":authority"[..], &b"h:1"[..])]);
    let sent = |w: &Wire, slot: usize| {
        let mut st = w.st.borrow_mut();
        st.out.clear();
        st.wpos = 0;
        drop(st);
        w.send(slot, &blocks, true, None, false).unwrap();
        w.st.borrow().out[frame::HEADER..].to_vec()
    };
    let w = Wire::new(4);
    assert_eq!(sent(&w, 0), blocks.plain);
    w.st.borrow_mut().frames(&server_flight(None)).unwrap();
    assert_eq!(sent(&w, 1), blocks.first);
    assert_eq!(sent(&w, 2), blocks.steady);
    let mut b = Vec::new();
    frame::put_settings(&mut b, &[(frame::SETTINGS_HEADER_TABLE_SIZE, 0)]);
    w.st.borrow_mut().frames(&b).unwrap();
    let mut want = vec![0x20];
    want.extend_from_slice(&blocks.plain);
    assert_eq!(sent(&w, 3), want);
}

fn futures_noop() -> Waker {
    Waker::noop().clone()
}
