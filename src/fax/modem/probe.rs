//! PURE: what a modem says about itself (`ATI`, `AT+FCLASS=?`, `AT+FTM=?`, `AT+FRM=?`,
//! `AT+FTH=?`) and which speeds that lets us offer in DIS (T.30 Table 2 bits 11–14).

use super::at::{self, AtCommand, FinalResult};
use super::profile::ModemClass;
use crate::fax::t30::{Modulation, Training};

/// The probe commands, in order, with what each answer fills in.
pub fn commands() -> Vec<(ProbeItem, AtCommand)> {
    [
        (ProbeItem::Identity, "ATI"),
        (ProbeItem::Classes, "AT+FCLASS=?"),
        (ProbeItem::TransmitSpeeds, "AT+FTM=?"),
        (ProbeItem::ReceiveSpeeds, "AT+FRM=?"),
        (ProbeItem::HdlcSpeeds, "AT+FTH=?"),
    ]
    .into_iter()
    .map(|(i, c)| (i, AtCommand::new(c).expect("probe commands are valid")))
    .collect()
}

/// Which part of [`ModemInfo`] a probe command answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeItem {
    /// `ATI`: free-text identity.
    Identity,
    /// `AT+FCLASS=?`: service classes (`0,1,1.0,2.0`).
    Classes,
    /// `AT+FTM=?`: page-data modulations it can send.
    TransmitSpeeds,
    /// `AT+FRM=?`: page-data modulations it can receive.
    ReceiveSpeeds,
    /// `AT+FTH=?`: HDLC modulations (3 = V.21 channel 2 is required by T.31).
    HdlcSpeeds,
}

/// A modem's self-description.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModemInfo {
    /// `ATI` text lines joined by `; `.
    pub identity: String,
    /// Service classes offered (`"1"`, `"1.0"`, `"2.0"`, …).
    pub classes: Vec<String>,
    /// Carriers `+FTM` accepts (modulation and, for V.17, training; T.31 Table 1).
    pub transmit: Vec<(Modulation, Training)>,
    /// Carriers `+FRM` accepts.
    pub receive: Vec<(Modulation, Training)>,
    /// `+FTH=?` includes 3 (V.21 HDLC, needed for T.30 signalling).
    pub v21_hdlc: bool,
}

impl ModemInfo {
    /// Fold one probe answer in. An `ERROR` leaves the item empty (the modem lacks it).
    pub fn record(&mut self, item: ProbeItem, result: FinalResult, info: &[String]) {
        if result != FinalResult::Ok {
            return;
        }
        let joined = info.join(",");
        match item {
            ProbeItem::Identity => self.identity = info.join("; "),
            ProbeItem::Classes => {
                self.classes = joined
                    .split(',')
                    .map(|s| s.trim().trim_matches(|c| c == '(' || c == ')').to_owned())
                    .filter(|s| !s.is_empty() && s.len() <= 8)
                    .take(16)
                    .collect()
            }
            ProbeItem::TransmitSpeeds => self.transmit = modulations(&joined),
            ProbeItem::ReceiveSpeeds => self.receive = modulations(&joined),
            ProbeItem::HdlcSpeeds => self.v21_hdlc = at::parse_number_list(&joined).contains(&3),
        }
    }

    /// Class 1 is usable: the class is offered and V.21 HDLC works.
    pub fn class1(&self) -> bool {
        self.classes.iter().any(|c| c == "1" || c == "1.0") && self.v21_hdlc
    }

    /// Class 2.0 (T.32) is offered.
    pub fn class2_0(&self) -> bool {
        self.classes.iter().any(|c| c == "2.0")
    }

    /// The class faxgate drives this modem best in, of those it offers: Class 1.0, then 1
    /// (faxgate runs T.30 itself — its own ECM, fallback, copy-quality verdicts and full call
    /// report), then 2.0 (the modem runs T.30 and reports only what T.32 carries). `None`
    /// when it offers none of them (Class 2 without the ".0" is EIA-592, which faxgate does
    /// not select).
    pub fn best_class(&self) -> Option<ModemClass> {
        let has = |c: &str| self.classes.iter().any(|x| x == c);
        if has("1.0") {
            Some(ModemClass::Class1_0)
        } else if has("1") {
            Some(ModemClass::Class1)
        } else if has("2.0") {
            Some(ModemClass::Class2_0)
        } else {
            None
        }
    }

    /// Highest page-data rate usable in both directions, bit/s (0 if none).
    pub fn max_rate(&self) -> u32 {
        self.transmit
            .iter()
            .filter(|m| self.receive.contains(m))
            .map(|(m, _)| m.bps())
            .max()
            .unwrap_or(0)
    }

    /// The modem offers V.17 (both directions).
    pub fn v17(&self) -> bool {
        self.transmit
            .iter()
            .any(|c| c.0.has_short_training() && self.receive.contains(c))
    }
}

fn modulations(list: &str) -> Vec<(Modulation, Training)> {
    at::parse_number_list(list)
        .into_iter()
        .filter_map(Modulation::from_class1_code)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rig_answers() {
        let mut m = ModemInfo::default();
        m.record(ProbeItem::Identity, FinalResult::Ok, &["spandsp".into()]);
        m.record(ProbeItem::Classes, FinalResult::Ok, &["0,1,1.0".into()]);
        let speeds = vec!["24,48,72,73,74,96,97,98,121,122,145,146".to_string()];
        m.record(ProbeItem::TransmitSpeeds, FinalResult::Ok, &speeds);
        m.record(ProbeItem::ReceiveSpeeds, FinalResult::Ok, &speeds);
        m.record(ProbeItem::HdlcSpeeds, FinalResult::Ok, &["3".into()]);
        assert!(m.class1());
        assert_eq!(m.transmit.len(), 12);
        assert_eq!(m.max_rate(), 14400);
        assert!(m.v17());
    }

    #[test]
    fn best_class_of_what_is_offered() {
        let with = |list: &str| {
            let mut m = ModemInfo::default();
            m.record(ProbeItem::Classes, FinalResult::Ok, &[list.into()]);
            m
        };
        assert_eq!(with("0,1,1.0").best_class(), Some(ModemClass::Class1_0));
        assert_eq!(with("(0,1,2,2.0)").best_class(), Some(ModemClass::Class1));
        let c2 = with("0,2,2.0,8");
        assert_eq!(c2.best_class(), Some(ModemClass::Class2_0));
        assert!(c2.class2_0() && !c2.class1());
        assert_eq!(with("0,2").best_class(), None);
    }

    #[test]
    fn error_leaves_item_empty() {
        let mut m = ModemInfo::default();
        m.record(
            ProbeItem::TransmitSpeeds,
            FinalResult::Error,
            &["24".into()],
        );
        assert!(m.transmit.is_empty());
        assert_eq!(m.max_rate(), 0);
        assert!(!m.class1());
    }
}
