//! Admin commands: Identify, queue creation and deletion, features, log
//! pages, Abort and Asynchronous Event Request.

use crate::command::{CQE_SIZE, Command, SQE_SIZE};
use crate::controller::{AER_LIMIT, MAX_QUEUES, MDTS, MQES, MSIX_VECTORS, NvmeController, Outcome};
use crate::identify::{self, ControllerInfo};
use crate::prp;
use crate::queue::{CompQueue, SubQueue};
use crate::spec::{Status, admin, cc, feature};

/// I/O queue pairs (queue ids 1..=63).
const IO_QUEUES: u16 = (MAX_QUEUES - 1) as u16;

impl NvmeController {
    /// Executes an admin command.
    pub(crate) fn admin(&mut self, cmd: &Command) -> Outcome {
        if cmd.psdt != 0 || cmd.fuse != 0 {
            return Outcome::Done(Status::INVALID_FIELD, 0);
        }
        match cmd.opcode {
            admin::IDENTIFY => self.identify(cmd).into(),
            admin::CREATE_CQ => self.create_cq(cmd).into(),
            admin::CREATE_SQ => self.create_sq(cmd).into(),
            admin::DELETE_SQ => self.delete_sq(cmd).into(),
            admin::DELETE_CQ => self.delete_cq(cmd).into(),
            admin::GET_FEATURES => self.get_features(cmd).into(),
            admin::SET_FEATURES => self.set_features(cmd).into(),
            admin::GET_LOG_PAGE => self.get_log_page(cmd).into(),
            // Every command completes before Abort can see it: "not aborted".
            admin::ABORT => Outcome::Done(Status::SUCCESS, 1),
            admin::ASYNC_EVENT => {
                if self.aers.len() >= AER_LIMIT {
                    Outcome::Done(Status::AER_LIMIT_EXCEEDED, 0)
                } else {
                    self.aers.push(cmd.cid);
                    Outcome::Held
                }
            }
            _ => Outcome::Done(Status::INVALID_OPCODE, 0),
        }
    }

    /// Copies `data` to the command's PRPs (controller to host).
    pub(crate) fn copy_to_host(&mut self, cmd: &Command, data: &[u8]) -> Result<(), Status> {
        let segs = prp::segments(&self.dma, cmd.prp1, cmd.prp2, data.len(), self.page_size())?;
        prp::write_to_guest(&self.dma, &segs, data)?;
        self.moved += data.len() as u64;
        Ok(())
    }

    fn identify(&mut self, cmd: &Command) -> Result<u32, Status> {
        let cns = cmd.cdw(10) & 0xFF;
        let data = match cns {
            0x00 => {
                if cmd.nsid != 1 {
                    return Err(Status::INVALID_NAMESPACE);
                }
                identify::namespace(&self.disk)
            }
            0x01 => identify::controller(&ControllerInfo {
                vendor: crate::controller::VENDOR_ID,
                mdts: MDTS,
                namespaces: 1,
                aerl: (AER_LIMIT - 1) as u8,
                io_queues: IO_QUEUES,
            }),
            0x02 => {
                if cmd.nsid >= 0xFFFF_FFFE {
                    return Err(Status::INVALID_NAMESPACE);
                }
                identify::active_namespaces(cmd.nsid)
            }
            0x03 => {
                if cmd.nsid != 1 {
                    return Err(Status::INVALID_NAMESPACE);
                }
                identify::namespace_descriptors()
            }
            _ => return Err(Status::INVALID_FIELD),
        };
        self.copy_to_host(cmd, &data)?;
        Ok(0)
    }

    /// Checks a new queue's id, size, contiguity and base address.
    fn check_new_queue(
        &self,
        cmd: &Command,
        exists: bool,
        entry_size: usize,
    ) -> Result<(usize, u32), Status> {
        let qid = (cmd.cdw(10) & 0xFFFF) as usize;
        let size = (cmd.cdw(10) >> 16) + 1;
        if qid == 0 || qid >= MAX_QUEUES || exists {
            return Err(Status::INVALID_QUEUE_ID);
        }
        if !(2..=MQES + 1).contains(&size) {
            return Err(Status::INVALID_QUEUE_SIZE);
        }
        if cmd.cdw(11) & 1 == 0 {
            // CAP.CQR: only physically contiguous queues.
            return Err(Status::INVALID_FIELD);
        }
        if cmd.prp1 & (self.page_size() - 1) != 0 {
            return Err(Status::INVALID_PRP_OFFSET);
        }
        if !self.dma.contains(cmd.prp1, size as usize * entry_size) {
            return Err(Status::DATA_TRANSFER_ERROR);
        }
        Ok((qid, size))
    }

    fn create_cq(&mut self, cmd: &Command) -> Result<u32, Status> {
        let qid = (cmd.cdw(10) & 0xFFFF) as usize;
        let exists = self.cqs.get(qid).is_some_and(Option::is_some);
        let (qid, size) = self.check_new_queue(cmd, exists, CQE_SIZE)?;
        if !matches!(cc::iocqes(self.cc), 0 | 4) {
            return Err(Status::INVALID_FIELD);
        }
        let interrupts = cmd.cdw(11) & 2 != 0;
        let vector = (cmd.cdw(11) >> 16) as u16;
        if vector >= MSIX_VECTORS {
            return Err(Status::INVALID_VECTOR);
        }
        let slot = self.cqs.get_mut(qid).ok_or(Status::INVALID_QUEUE_ID)?;
        *slot = Some(CompQueue::new(cmd.prp1, size, interrupts, vector));
        Ok(0)
    }

    fn create_sq(&mut self, cmd: &Command) -> Result<u32, Status> {
        let qid = (cmd.cdw(10) & 0xFFFF) as usize;
        let exists = self.sqs.get(qid).is_some_and(Option::is_some);
        if qid == 0 || qid >= MAX_QUEUES || exists {
            return Err(Status::INVALID_QUEUE_ID);
        }
        let cqid = (cmd.cdw(11) >> 16) as usize;
        if cqid == 0 || !self.cqs.get(cqid).is_some_and(Option::is_some) {
            return Err(Status::INVALID_CQ);
        }
        let (qid, size) = self.check_new_queue(cmd, false, SQE_SIZE)?;
        if !matches!(cc::iosqes(self.cc), 0 | 6) {
            return Err(Status::INVALID_FIELD);
        }
        let slot = self.sqs.get_mut(qid).ok_or(Status::INVALID_QUEUE_ID)?;
        *slot = Some(SubQueue::new(cmd.prp1, size, cqid as u16));
        Ok(0)
    }

    fn delete_sq(&mut self, cmd: &Command) -> Result<u32, Status> {
        let qid = (cmd.cdw(10) & 0xFFFF) as usize;
        if qid == 0 {
            return Err(Status::INVALID_QUEUE_ID);
        }
        let slot = self
            .sqs
            .get_mut(qid)
            .filter(|s| s.is_some())
            .ok_or(Status::INVALID_QUEUE_ID)?;
        // Commands execute as they are fetched: nothing is in flight to abort.
        *slot = None;
        Ok(0)
    }

    fn delete_cq(&mut self, cmd: &Command) -> Result<u32, Status> {
        let qid = (cmd.cdw(10) & 0xFFFF) as usize;
        if qid == 0 || !self.cqs.get(qid).is_some_and(Option::is_some) {
            return Err(Status::INVALID_QUEUE_ID);
        }
        if self
            .sqs
            .iter()
            .flatten()
            .any(|sq| usize::from(sq.cqid) == qid)
        {
            return Err(Status::INVALID_QUEUE_DELETION);
        }
        if let Some(slot) = self.cqs.get_mut(qid) {
            *slot = None;
        }
        Ok(0)
    }

    fn get_features(&mut self, cmd: &Command) -> Result<u32, Status> {
        let fid = (cmd.cdw(10) & 0xFF) as u8;
        let sel = (cmd.cdw(10) >> 8) & 0x7;
        let defaults = crate::controller::Features::default();
        let f = match sel {
            0 => &self.features,
            1 | 2 => &defaults,
            // Supported capabilities: changeable, not saveable, not per namespace.
            3 => return self.feature_value(fid, &defaults, cmd).map(|_| 0b100),
            _ => return Err(Status::INVALID_FIELD),
        };
        self.feature_value(fid, &f.clone(), cmd)
    }

    fn feature_value(
        &self,
        fid: u8,
        f: &crate::controller::Features,
        cmd: &Command,
    ) -> Result<u32, Status> {
        let queues = u32::from(IO_QUEUES - 1);
        Ok(match fid {
            feature::ARBITRATION => f.arbitration,
            feature::POWER_MANAGEMENT => f.power_management,
            feature::TEMPERATURE_THRESHOLD => f.temperature_threshold,
            feature::ERROR_RECOVERY => f.error_recovery,
            feature::VOLATILE_WRITE_CACHE => u32::from(f.write_cache),
            feature::NUMBER_OF_QUEUES => queues | queues << 16,
            feature::INTERRUPT_COALESCING => f.coalescing,
            feature::INTERRUPT_VECTOR_CONFIG => {
                let iv = (cmd.cdw(11) & 0xFFFF) as usize;
                *f.vector_config.get(iv).ok_or(Status::INVALID_FIELD)?
            }
            feature::WRITE_ATOMICITY => f.write_atomicity,
            feature::ASYNC_EVENT_CONFIG => f.async_event_config,
            _ => return Err(Status::INVALID_FIELD),
        })
    }

    fn set_features(&mut self, cmd: &Command) -> Result<u32, Status> {
        if cmd.cdw(10) & (1 << 31) != 0 {
            return Err(Status::FEATURE_NOT_SAVEABLE);
        }
        let fid = (cmd.cdw(10) & 0xFF) as u8;
        let v = cmd.cdw(11);
        let f = &mut self.features;
        match fid {
            feature::ARBITRATION => f.arbitration = v,
            feature::POWER_MANAGEMENT => {
                // One power state (NPSS 0).
                if v & 0x1F != 0 {
                    return Err(Status::INVALID_FIELD);
                }
                f.power_management = v;
            }
            feature::TEMPERATURE_THRESHOLD => f.temperature_threshold = v,
            feature::ERROR_RECOVERY => f.error_recovery = v,
            feature::VOLATILE_WRITE_CACHE => {
                let enable = v & 1 != 0;
                if f.write_cache && !enable {
                    // Turning the cache off makes what it holds durable.
                    self.disk.flush().map_err(|_| Status::WRITE_FAULT)?;
                }
                self.features.write_cache = enable;
            }
            feature::NUMBER_OF_QUEUES => {
                if v & 0xFFFF == 0xFFFF || v >> 16 == 0xFFFF {
                    return Err(Status::INVALID_FIELD);
                }
                let queues = u32::from(IO_QUEUES - 1);
                return Ok(queues | queues << 16);
            }
            // Stored and reported; completions are never delayed (the
            // aggregation threshold and time are hints).
            feature::INTERRUPT_COALESCING => f.coalescing = v & 0xFFFF,
            feature::INTERRUPT_VECTOR_CONFIG => {
                let iv = (v & 0xFFFF) as usize;
                let slot = f.vector_config.get_mut(iv).ok_or(Status::INVALID_FIELD)?;
                *slot = v & 0x1_FFFF;
            }
            feature::WRITE_ATOMICITY => f.write_atomicity = v & 1,
            feature::ASYNC_EVENT_CONFIG => f.async_event_config = v,
            _ => return Err(Status::INVALID_FIELD),
        }
        Ok(0)
    }

    fn get_log_page(&mut self, cmd: &Command) -> Result<u32, Status> {
        let lid = (cmd.cdw(10) & 0xFF) as u8;
        let dwords = ((cmd.cdw(11) & 0xFFFF) << 16 | cmd.cdw(10) >> 16) as u64 + 1;
        let len = dwords * 4;
        let offset = u64::from(cmd.cdw(12)) | u64::from(cmd.cdw(13)) << 32;
        let page = identify::log_page(lid, &self.counters).ok_or(Status::INVALID_LOG_PAGE)?;
        if len > self.max_transfer() || offset & 3 != 0 || offset >= page.len() as u64 {
            return Err(Status::INVALID_FIELD);
        }
        // Bytes past the end of the page read as zero.
        let mut data = vec![0u8; len as usize];
        let tail = page.get(offset as usize..).unwrap_or(&[]);
        for (d, s) in data.iter_mut().zip(tail) {
            *d = *s;
        }
        self.copy_to_host(cmd, &data)?;
        Ok(0)
    }
}
