//! A bounds-checked cursor over PDU octets.
//!
//! Every read names the field it is for, so a short input becomes [`PduError::Truncated`] with
//! the field and offset instead of an index panic. It knows nothing of the fields themselves.

use super::error::PduError;

/// Reads octets front to back, never past the end.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, offset: 0 }
    }

    /// How many octets are left.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    /// How far into the input the next read starts.
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// Everything not read yet, without reading it.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.bytes[self.offset..]
    }

    /// The next octet.
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, PduError> {
        Ok(self.take(1, field)?[0])
    }

    /// The next `count` octets.
    pub(crate) fn take(&mut self, count: usize, field: &'static str) -> Result<&'a [u8], PduError> {
        let available = self.remaining();
        if count > available {
            return Err(PduError::Truncated {
                field,
                offset: self.offset,
                needed: count,
                available,
            });
        }
        let slice = &self.bytes[self.offset..self.offset + count];
        self.offset += count;
        Ok(slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_order_and_reports_truncation_with_field_and_offset() {
        let mut reader = Reader::new(&[1, 2, 3]);
        assert_eq!(reader.u8("a").unwrap(), 1);
        assert_eq!((reader.offset(), reader.rest()), (1, &[2, 3][..]));
        assert_eq!(reader.take(2, "b").unwrap(), &[2, 3]);
        assert_eq!(
            reader.u8("TP-PID"),
            Err(PduError::Truncated {
                field: "TP-PID",
                offset: 3,
                needed: 1,
                available: 0
            })
        );
        assert_eq!(reader.remaining(), 0);
    }
}
