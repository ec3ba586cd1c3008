//! The hand-written writers of the `connections` entries (`ConnEntry` and the handshake,
//! teardown, anomaly and state objects inside it); the contract is the parent module's:
//! the bytes `serde_json` writes for the same value.

use std::io;

use super::{list, JsonOut, WriteJson};
use crate::report::conns::{
    AnomaliesEntry, ConnEntry, HandshakeEntry, StepEntry, TcpStateEntry, TeardownEntry,
};
use crate::report::TcpOptionsEntry;

impl WriteJson for StepEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        o.raw(b"{\"frame\":");
        o.u64(self.frame);
        o.raw(b",\"dir\":");
        o.str(&self.dir);
        o.raw(b",\"t_ms\":");
        o.f64(self.t_ms);
        o.raw(b",\"flags\":");
        o.str(&self.flags);
        o.raw(b",\"seq\":");
        o.u64(u64::from(self.seq));
        o.raw(b",\"ack\":");
        o.u64(u64::from(self.ack));
        o.raw(b",\"rel_seq\":");
        o.i64(self.rel_seq);
        o.raw(b",\"rel_ack\":");
        o.i64(self.rel_ack);
        o.raw(b",\"len\":");
        o.u64(u64::from(self.len));
        o.raw(b",\"what\":");
        o.str(&self.what);
        if let Some(n) = self.expected_ack {
            o.raw(b",\"expected_ack\":");
            o.u64(u64::from(n));
        }
        if let Some(v) = self.ack_ok {
            o.raw(b",\"ack_ok\":");
            o.bool(v);
        }
        o.raw(b"}");
        Ok(())
    }
}

impl WriteJson for TcpOptionsEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        // Every field may be skipped: a comma before each but the first written.
        o.raw(b"{");
        let mut first = true;
        let mut field = |o: &mut JsonOut<'_>, name: &[u8]| {
            if !first {
                o.raw(b",");
            }
            first = false;
            o.raw(name);
        };
        if let Some(n) = self.mss {
            field(o, b"\"mss\":");
            o.u64(u64::from(n));
        }
        if let Some(n) = self.window_scale {
            field(o, b"\"window_scale\":");
            o.u64(u64::from(n));
        }
        if self.sack_permitted {
            field(o, b"\"sack_permitted\":true");
        }
        if self.sack_blocks != 0 {
            field(o, b"\"sack_blocks\":");
            o.u64(u64::from(self.sack_blocks));
        }
        if let Some(n) = self.tsval {
            field(o, b"\"tsval\":");
            o.u64(u64::from(n));
        }
        if let Some(n) = self.tsecr {
            field(o, b"\"tsecr\":");
            o.u64(u64::from(n));
        }
        o.raw(b"}");
        Ok(())
    }
}

impl WriteJson for HandshakeEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        o.raw(b"{\"outcome\":");
        o.str(&self.outcome);
        o.raw(b",\"syn_frames\":");
        o.u64_list(&self.syn_frames);
        o.raw(b",\"synack_frame\":");
        o.opt_u64(self.synack_frame);
        o.raw(b",\"ack_frame\":");
        o.opt_u64(self.ack_frame);
        o.raw(b",\"rst_frame\":");
        o.opt_u64(self.rst_frame);
        o.raw(b",\"orig_isn\":");
        o.opt_u64(self.orig_isn.map(u64::from));
        o.raw(b",\"resp_isn\":");
        o.opt_u64(self.resp_isn.map(u64::from));
        o.raw(b",\"syn_retransmissions\":");
        o.u64(self.syn_retransmissions);
        o.raw(b",\"rtt_ms\":{\"syn_to_synack\":");
        o.opt_f64(self.rtt_ms.syn_to_synack);
        o.raw(b",\"synack_to_ack\":");
        o.opt_f64(self.rtt_ms.synack_to_ack);
        o.raw(b"},\"synack_retransmissions\":");
        o.u64(self.synack_retransmissions);
        o.raw(b",\"acks_verified\":");
        o.bool(self.acks_verified);
        o.raw(b",\"mismatches\":");
        o.serde_list(&self.mismatches)?;
        if let Some(opt) = &self.orig_options {
            o.raw(b",\"orig_options\":");
            opt.write_json(o)?;
        }
        if let Some(opt) = &self.resp_options {
            o.raw(b",\"resp_options\":");
            opt.write_json(o)?;
        }
        o.raw(b",\"syn_data_bytes\":");
        o.u64(self.syn_data_bytes);
        o.raw(b",\"steps\":");
        list(o, &self.steps)?;
        o.raw(b",\"steps_dropped\":");
        o.u64(u64::from(self.steps_dropped));
        o.raw(b"}");
        Ok(())
    }
}

impl WriteJson for TeardownEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        o.raw(b"{\"kind\":");
        o.str(&self.kind);
        o.raw(b",\"initiator\":");
        match &self.initiator {
            Some(s) => o.str(s),
            None => o.raw(b"null"),
        }
        o.raw(b",\"frames\":");
        o.u64_list(&self.frames);
        o.raw(b",\"steps\":");
        list(o, &self.steps)?;
        o.raw(b",\"steps_dropped\":");
        o.u64(u64::from(self.steps_dropped));
        o.raw(b",\"fin_to_last_ack_ms\":");
        o.opt_f64(self.fin_to_last_ack_ms);
        o.raw(b",\"half_close_bytes\":");
        o.u64(self.half_close_bytes);
        o.raw(b",\"notes\":[");
        for (i, n) in self.notes.iter().enumerate() {
            if i > 0 {
                o.raw(b",");
            }
            o.str(n);
        }
        o.raw(b"]}");
        Ok(())
    }
}

impl WriteJson for AnomaliesEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        o.raw(b"{\"retransmissions\":");
        o.u64(self.retransmissions);
        o.raw(b",\"out_of_order\":");
        o.u64(self.out_of_order);
        o.raw(b",\"dup_acks\":");
        o.u64(self.dup_acks);
        o.raw(b",\"zero_window\":");
        o.u64(self.zero_window);
        o.raw(b",\"keep_alives\":");
        o.u64(self.keep_alives);
        o.raw(b",\"lost_segments\":");
        o.u64(self.lost_segments);
        o.raw(b",\"missed_bytes\":");
        o.u64(self.missed_bytes);
        o.raw(b",\"retransmitted_bytes\":");
        o.u64(self.retransmitted_bytes);
        o.raw(b"}");
        Ok(())
    }
}

impl WriteJson for TcpStateEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        o.raw(b"{\"orig\":");
        o.str(&self.orig);
        o.raw(b",\"resp\":");
        o.str(&self.resp);
        o.raw(b"}");
        Ok(())
    }
}

impl WriteJson for ConnEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        o.raw(b"{\"id\":");
        o.u64(self.id);
        o.raw(b",\"proto\":");
        o.str(&self.proto);
        o.raw(b",\"orig\":");
        o.str(&self.orig);
        o.raw(b",\"resp\":");
        o.str(&self.resp);
        o.raw(b",\"first_frame\":");
        o.u64(self.first_frame);
        o.raw(b",\"last_frame\":");
        o.u64(self.last_frame);
        o.raw(b",\"start\":");
        o.f64(self.start);
        o.raw(b",\"start_ns\":");
        o.i64(self.start_ns);
        o.raw(b",\"duration_s\":");
        o.f64(self.duration_s);
        o.raw(b",\"conn_state\":");
        o.str(&self.conn_state);
        o.raw(b",\"history\":");
        o.str(&self.history);
        o.raw(b",\"orig_pkts\":");
        o.u64(self.orig_pkts);
        o.raw(b",\"resp_pkts\":");
        o.u64(self.resp_pkts);
        o.raw(b",\"orig_bytes\":");
        o.u64(self.orig_bytes);
        o.raw(b",\"resp_bytes\":");
        o.u64(self.resp_bytes);
        o.raw(b",\"missed_bytes\":");
        o.u64(self.missed_bytes);
        o.raw(b",\"orig_ip_bytes\":");
        o.u64(self.orig_ip_bytes);
        o.raw(b",\"resp_ip_bytes\":");
        o.u64(self.resp_ip_bytes);
        o.raw(b",\"orig_payload_bytes\":");
        o.u64(self.orig_payload_bytes);
        o.raw(b",\"resp_payload_bytes\":");
        o.u64(self.resp_payload_bytes);
        o.raw(b",\"orig_by\":");
        o.str(&self.orig_by);
        o.raw(b",\"orig_guessed\":");
        o.bool(self.orig_guessed);
        o.raw(b",\"finalized_by\":");
        o.str(&self.finalized_by);
        if let Some(v) = self.vlan {
            o.raw(b",\"vlan\":");
            o.u64(u64::from(v));
        }
        if let Some(h) = &self.handshake {
            o.raw(b",\"handshake\":");
            h.write_json(o)?;
        }
        if let Some(t) = &self.teardown {
            o.raw(b",\"teardown\":");
            t.write_json(o)?;
        }
        if let Some(a) = &self.anomalies {
            o.raw(b",\"anomalies\":");
            a.write_json(o)?;
        }
        if let Some(t) = &self.tcp_state {
            o.raw(b",\"tcp_state\":");
            t.write_json(o)?;
        }
        o.raw(b"}");
        Ok(())
    }
}
