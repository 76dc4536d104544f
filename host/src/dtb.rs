//! The minimal device tree the runner hands QEMU's `raspi4b` so that `-append` reaches the image.

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

#[cfg(test)]
mod tests {
    use super::minimal_dtb;

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
