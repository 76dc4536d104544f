//! The minimal device tree the runner hands QEMU's `raspi4b` so that `-append` reaches the image,
//! and a reader of the little the card checks need from a real one (the root's `compatible`,
//! whether there is a `/memory` node).

/// A flattened device tree with only what QEMU's loader needs to fill in (`#address-cells`,
/// `#size-cells`, `/chosen`, `/memory`): the root's `compatible` (NUL-separated list), an empty
/// `/chosen` for QEMU to put `-append` into, and a `/memory` node that QEMU replaces.
/// Layout per the Devicetree Specification v0.4, chapter 5 (header, reservation map,
/// structure block, strings block; big-endian).
pub fn minimal_dtb(compatible: &str) -> Vec<u8> {
    const BEGIN_NODE: u32 = 1;
    const END_NODE: u32 = 2;
    const PROP: u32 = 3;
    const END: u32 = 9;
    let mut st: Vec<u8> = Vec::new();
    let mut strings: Vec<u8> = Vec::new();
    let u32be = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_be_bytes());
    let pad = |v: &mut Vec<u8>| {
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
    };
    let node = |st: &mut Vec<u8>, name: &str| {
        u32be(st, BEGIN_NODE);
        st.extend_from_slice(name.as_bytes());
        st.push(0);
        pad(st);
    };
    let prop = |st: &mut Vec<u8>, strings: &mut Vec<u8>, name: &str, val: &[u8]| {
        let off = strings.len() as u32;
        strings.extend_from_slice(name.as_bytes());
        strings.push(0);
        u32be(st, PROP);
        u32be(st, val.len() as u32);
        u32be(st, off);
        st.extend_from_slice(val);
        pad(st);
    };
    let cells = |xs: &[u32]| xs.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
    node(&mut st, "");
    prop(&mut st, &mut strings, "#address-cells", &cells(&[2]));
    prop(&mut st, &mut strings, "#size-cells", &cells(&[1]));
    prop(&mut st, &mut strings, "compatible", compatible.as_bytes());
    prop(&mut st, &mut strings, "model", b"quiescent minimal DT for QEMU\0");
    node(&mut st, "chosen");
    prop(&mut st, &mut strings, "bootargs", b"\0");
    u32be(&mut st, END_NODE);
    node(&mut st, "memory@0");
    prop(&mut st, &mut strings, "device_type", b"memory\0");
    prop(&mut st, &mut strings, "reg", &cells(&[0, 0, 0x3c00_0000]));
    u32be(&mut st, END_NODE);
    u32be(&mut st, END_NODE);
    u32be(&mut st, END);
    let hdr = 40usize;
    let rsv = hdr; // 8-byte aligned: one empty (terminating) entry
    let off_st = rsv + 16;
    let off_str = off_st + st.len();
    let total = off_str + strings.len();
    let mut out = Vec::with_capacity(total);
    for x in [
        0xd00d_feed,
        total as u32,
        off_st as u32,
        off_str as u32,
        rsv as u32,
        17,
        16,
        0,
        strings.len() as u32,
        st.len() as u32,
    ] {
        u32be(&mut out, x);
    }
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&st);
    out.extend_from_slice(&strings);
    out
}

/// What the card checks read from a flattened device tree.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outline {
    /// The root node's `compatible` strings.
    pub compatible: Vec<String>,
    /// The names of the root's child nodes (`memory@0`, `chosen`, ...).
    pub children: Vec<String>,
}

/// Reads the root's `compatible` and child node names of a flattened device tree, or says why
/// `dtb` is not one (Devicetree Specification v0.4, chapter 5).
pub fn outline(dtb: &[u8]) -> Result<Outline, String> {
    let be32 = |off: usize| -> Result<u32, String> {
        dtb.get(off..off + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| format!("truncated at byte {off}"))
    };
    if be32(0)? != 0xd00d_feed {
        return Err("no device-tree magic (0xd00dfeed)".into());
    }
    if be32(4)? as usize != dtb.len() {
        return Err(format!("header says {} bytes, the file has {}", be32(4)?, dtb.len()));
    }
    let (off_st, off_str) = (be32(8)? as usize, be32(12)? as usize);
    let cstr = |off: usize| -> Result<(String, usize), String> {
        let rest = dtb.get(off..).ok_or("string past the end")?;
        let n = rest.iter().position(|&b| b == 0).ok_or("unterminated string")?;
        Ok((String::from_utf8_lossy(&rest[..n]).into_owned(), n))
    };
    let mut out = Outline::default();
    let mut pos = off_st;
    let mut depth = 0usize;
    loop {
        let token = be32(pos)?;
        pos += 4;
        match token {
            1 => {
                let (name, n) = cstr(pos)?;
                pos += (n + 1).next_multiple_of(4);
                depth += 1;
                if depth == 2 {
                    out.children.push(name);
                }
            }
            2 => depth = depth.checked_sub(1).ok_or("FDT_END_NODE outside any node")?,
            3 => {
                let (len, nameoff) = (be32(pos)? as usize, be32(pos + 4)? as usize);
                let val = dtb.get(pos + 8..pos + 8 + len).ok_or("property past the end")?;
                pos += 8 + len.next_multiple_of(4);
                if depth == 1 && cstr(off_str + nameoff)?.0 == "compatible" {
                    out.compatible = val
                        .split(|&b| b == 0)
                        .filter(|s| !s.is_empty())
                        .map(|s| String::from_utf8_lossy(s).into())
                        .collect();
                }
            }
            4 => {}
            9 => return Ok(out),
            t => return Err(format!("unknown token {t} at byte {}", pos - 4)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{minimal_dtb, outline};

    #[test]
    fn outline_reads_the_root_compatible_and_children() {
        let o = outline(&minimal_dtb("raspberrypi,4-model-b\0brcm,bcm2711\0")).unwrap();
        assert_eq!(o.compatible, ["raspberrypi,4-model-b", "brcm,bcm2711"]);
        assert_eq!(o.children, ["chosen", "memory@0"]);
        assert!(outline(b"not a device tree at all").unwrap_err().contains("magic"));
    }

    fn be32(b: &[u8], off: usize) -> u32 {
        u32::from_be_bytes(b[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn header_describes_the_blob() {
        let dtb = minimal_dtb("raspberrypi,4-model-b\0brcm,bcm2711\0");
        assert_eq!(be32(&dtb, 0), 0xd00d_feed, "magic");
        assert_eq!(be32(&dtb, 4) as usize, dtb.len(), "totalsize");
        let (off_struct, off_strings) = (be32(&dtb, 8) as usize, be32(&dtb, 12) as usize);
        assert_eq!(off_struct % 4, 0);
        assert_eq!(be32(&dtb, off_struct), 1, "the structure block opens the root node");
        assert_eq!(be32(&dtb, off_strings - 4), 9, "and ends with FDT_END");
        assert_eq!(off_strings + be32(&dtb, 32) as usize, dtb.len(), "size_dt_strings");
        let strings = String::from_utf8_lossy(&dtb[off_strings..]);
        for name in ["#address-cells", "compatible", "bootargs", "reg"] {
            assert!(strings.contains(name), "{name} in the strings block");
        }
    }
}
