//! The AVX-512 outer-dim kernel: a `len x inner` block (classes strided by `inner`) 16 lanes
//! at a time, each lane's max, log-sum-exp and writes.

use super::exp::{
    ABOVE, BELOW, ExpConsts, GENERAL, exp_pd, exp16xn, lane_shift, lanes_mode, log1p_pd,
};
use super::vectors::{Extremes, shifted, steps, to_pd, to_ps, widen_add};
use crate::kernels::elem::{Elem, NativeBf16, as_native, as_native_out, native_bf16_for};
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Max and log-sum-exp of 16 lanes of a `len x inner` block (classes strided by `inner`),
/// starting at lane `at`, lanes outside `h` unused. `lse` is NaN in the lanes that are NaN
/// by PyTorch's rules (the same rules as the rows: +inf, all -inf, or a NaN in the lane).
pub(super) struct LaneStats {
    pub(super) m: __m512,
    pub(super) lse: [__m512d; 2],
}

/// The [`LaneStats`] of 16 lanes.
///
/// With debug assertions (the dev and test profiles: unoptimised) a function of its own:
/// unoptimised, every inlined copy gets its own stack slots, and the outer-dim kernel's tile
/// variants would need a frame larger than the 2 MB stacks of the test harness's and rayon's
/// threads. Optimised, inlined as the code around it: a call per group is measurably slower
/// (docs/PERFORMANCE.md, "Measurements behind the kernels").
///
/// # Safety
///
/// AVX-512 F, DQ, VL and BW; for every class `c < len`, the lanes `h` of `x[at + c * inner..][..16]` are in bounds.
#[cfg(debug_assertions)]
#[inline(never)]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
pub(super) unsafe fn lane_stats<E: Elem>(
    x: &[E],
    len: usize,
    inner: usize,
    at: usize,
    h: __mmask16,
) -> LaneStats {
    // SAFETY: this function's contract: AVX-512, and the lanes of every load in bounds.
    unsafe { lane_stats_body(x, len, inner, at, h) }
}

/// # Safety
///
/// AVX-512 F, DQ, VL and BW; for every class `c < len`, the lanes `h` of `x[at + c * inner..][..16]` are in bounds.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub(super) unsafe fn lane_stats<E: Elem>(
    x: &[E],
    len: usize,
    inner: usize,
    at: usize,
    h: __mmask16,
) -> LaneStats {
    // SAFETY: this function's contract: AVX-512, and the lanes of every load in bounds.
    unsafe { lane_stats_body(x, len, inner, at, h) }
}

/// # Safety
///
/// As [`lane_stats`].
#[inline(always)]
pub(super) unsafe fn lane_stats_body<E: Elem>(
    x: &[E],
    len: usize,
    inner: usize,
    at: usize,
    h: __mmask16,
) -> LaneStats {
    // SAFETY: the caller's contract: AVX-512, and every load below (lanes `h` of class `c < len` from `at + c * inner`) in bounds.
    unsafe {
        let p = x.as_ptr().add(at);
        let load = |c: usize| E::load16_masked(h, p.add(c * inner));
        // The max and min, NaN skipped, in four independent chains (one chain over the classes
        // would wait on each vmaxps's latency).
        let mut ex = [Extremes::new(); 4];
        let mut c = 0;
        while c + 4 <= len {
            for (j, e) in ex.iter_mut().enumerate() {
                e.add(load(c + j));
            }
            c += 4;
        }
        while c < len {
            ex[0].add(load(c));
            c += 1;
        }
        let [e0, e1, e2, e3] = ex;
        let m = _mm512_max_ps(_mm512_max_ps(e0.max, e1.max), _mm512_max_ps(e2.max, e3.max));
        let mn = _mm512_min_ps(_mm512_min_ps(e0.min, e1.min), _mm512_min_ps(e2.min, e3.min));
        let consts = ExpConsts::lanes(m);
        let mode = if h == !0 { lanes_mode(m, mn) } else { GENERAL };
        let one = [_mm512_set1_pd(1.0); 2];
        let acc = match (mode, h == !0) {
            (ABOVE, _) => lane_sums::<ABOVE>(load, len, m, consts, one),
            (BELOW, _) => lane_sums::<BELOW>(load, len, m, consts, one),
            (_, true) => match lane_shift(m, mn) {
                // the terms e^(x - M) = e^(x - m) e^(m - M), scaled back by e^(M - m)
                Some(shift) => {
                    // once per group, of the exact differences
                    let ([s0, s1], [m0, m1]) = (to_pd(shift), to_pd(m));
                    let scale = [exp_pd(_mm512_sub_pd(s0, m0)), exp_pd(_mm512_sub_pd(s1, m1))];
                    lane_sums::<ABOVE>(load, len, m, ExpConsts::lanes(shift), scale)
                }
                None => lane_sums::<GENERAL>(load, len, m, consts, one),
            },
            _ => lane_sums::<GENERAL>(load, len, m, consts, one),
        };
        let finite = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(_mm512_sub_ps(m, m), _mm512_setzero_ps());
        let nan = _mm512_set1_pd(f64::NAN);
        let l = [log1p_pd(acc[0]), log1p_pd(acc[1])];
        let lse = [
            _mm512_mask_blend_pd(finite as __mmask8, nan, l[0]),
            _mm512_mask_blend_pd((finite >> 8) as __mmask8, nan, l[1]),
        ];
        LaneStats { m, lse }
    }
}

/// Per lane, `sum over classes c != argmax of exp(x_c - m)` in float64 (lanes 0..8, 8..16).
///
/// Every element equal to the max is left out of the exp sum (exactly 1 each) and counted:
/// the sum is then that count minus one plus the others' terms, with no argmax to track.
///
/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW (the module's `# Safety`).
#[inline(always)]
pub(super) unsafe fn lane_sums<const MODE: u8>(
    load: impl Fn(usize) -> __m512,
    len: usize,
    m: __m512,
    consts: ExpConsts,
    scale: [__m512d; 2],
) -> [__m512d; 2] {
    // SAFETY: AVX-512 is available (this function's contract); memory is read only through `load`, the caller's.
    unsafe {
        let (mut a0, mut a1) = (_mm512_setzero_pd(), _mm512_setzero_pd());
        let mut ties = _mm512_setzero_si512();
        let one = _mm512_set1_epi32(1);
        // NaN compares unequal, so a NaN reaches the sum
        let mut keep = |v: __m512| {
            let eq = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(v, m);
            ties = _mm512_mask_add_epi32(ties, eq, ties, one);
            !eq
        };
        let mut c = 0;
        while c + 4 <= len {
            let v = [load(c), load(c + 1), load(c + 2), load(c + 3)];
            let k = [keep(v[0]), keep(v[1]), keep(v[2]), keep(v[3])];
            let [e0, e1, e2, e3] = exp16xn::<4, MODE>(v, consts, k);
            widen_add(
                &mut a0,
                &mut a1,
                _mm512_add_ps(_mm512_add_ps(e0, e1), _mm512_add_ps(e2, e3)),
            );
            c += 4;
        }
        while c < len {
            let v = load(c);
            let k = keep(v);
            widen_add(&mut a0, &mut a1, exp16xn::<1, MODE>([v], consts, [k])[0]);
            c += 1;
        }
        let extra = _mm512_sub_epi32(ties, one);
        [
            _mm512_fmadd_pd(
                a0,
                scale[0],
                _mm512_cvtepi32_pd(_mm512_castsi512_si256(extra)),
            ),
            _mm512_fmadd_pd(
                a1,
                scale[1],
                _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64::<1>(extra)),
            ),
        ]
    }
}

/// Classes up to which a 16-bit block is widened into a float32 column (256 KiB, in L2).
pub(super) const COLUMN_MAX: usize = 4096;

/// Where a 16-lane group's elements are read from after its first read: the input, or a
/// float32 copy of the group (its 16 lanes of every class) in L1 or L2.
///
/// A 16-bit input would be converted on each of the three reads (max, sum, write); the
/// column widens it once. A float32 input gets one when its classes' lines crowd into a few
/// L1 sets (the class stride a multiple of 4 KiB, as in 8x21x128x128, puts all 21 of a
/// group's lines, and the output's 21, in one 12-way set): the sum and write passes would
/// then reload from L2 what the max pass brought in, and each load would wait on the store
/// the previous class made at the same page offset ("4K aliasing", 7-19% depending on where
/// the output lies from the input). See [`wants_column`].
///
/// It holds the groups of one tile ([`TILE_GROUPS`]), one after another.
pub(super) struct Column<'a> {
    pub(super) buf: &'a mut [f32],
    pub(super) start: usize,
    pub(super) len: usize,
}

impl<'a> Column<'a> {
    /// A column of `groups` groups of `len` classes in `scratch` if `wanted` (the caller's
    /// per-task scratch, so that a call per tile of lanes does not allocate one each time).
    pub(super) fn new(scratch: &'a mut Vec<f32>, len: usize, groups: usize, wanted: bool) -> Self {
        // a page of room to slide the column to any page offset, plus a line to align it
        let n = if wanted { 1040 + groups * len * 16 } else { 0 };
        if scratch.len() < n {
            scratch.resize(n, 0.0);
        }
        Column {
            buf: &mut scratch[..n],
            start: 0,
            len,
        }
    }

    /// Puts the column half a page from `away` (an address about to be stored to) modulo
    /// 4 KiB, so that its loads never alias those stores.
    pub(super) fn place(&mut self, away: usize) {
        if !self.buf.is_empty() {
            let base = self.buf.as_ptr() as usize;
            self.start = (((away + 2048) & 4032).wrapping_sub(base) & 4095) / 4;
        }
    }

    /// [`lane_stats`] of the 16 lanes from `at` (those outside `h` unused), copying them
    /// into the column's slot `g` first when there is one.
    ///
    /// # Safety
    ///
    /// AVX-512; the lanes `h` of the group at `at` are in bounds of `x` for every class; `g` is below the group count the column was made for.
    #[inline(always)]
    pub(super) unsafe fn stats<E: Elem>(
        &mut self,
        x: &[E],
        inner: usize,
        at: usize,
        h: __mmask16,
        g: usize,
    ) -> LaneStats {
        // SAFETY: the loads from `x` are the caller's contract; slot `g` spans `len * 16` floats from `start + g * len * 16`, inside `buf` (sized in `new` for every group and a page of slack, `start < 1024`).
        unsafe {
            let len = self.len;
            if self.buf.is_empty() {
                return lane_stats(x, len, inner, at, h);
            }
            let from = self.start + g * len * 16;
            let col = self.buf.as_mut_ptr().add(from);
            for c in 0..len {
                _mm512_storeu_ps(
                    col.add(c * 16),
                    E::load16_masked(h, x.as_ptr().add(at + c * inner)),
                );
            }
            lane_stats(&self.buf[from..], len, 16, 0, h)
        }
    }

    /// Class `c` of the group [`Column::stats`] saw in slot `g`.
    ///
    /// # Safety
    ///
    /// As [`Column::stats`], for the group it saw in slot `g`.
    #[inline(always)]
    pub(super) unsafe fn load<E: Elem>(
        &self,
        x: &[E],
        inner: usize,
        at: usize,
        h: __mmask16,
        c: usize,
        g: usize,
    ) -> __m512 {
        // SAFETY: as in `stats`: the load from `x` is the caller's contract, the column slot lies inside `buf`.
        unsafe {
            if self.buf.is_empty() {
                E::load16_masked(h, x.as_ptr().add(at + c * inner))
            } else {
                _mm512_loadu_ps(self.buf.as_ptr().add(self.start + (g * self.len + c) * 16))
            }
        }
    }
}

/// Whether a `len x inner` block of `E` is read through a [`Column`]: always for 16-bit
/// types (up to [`COLUMN_MAX`] classes); for float32 when the column fits in L1 beside the
/// data (256 classes, 16 KiB) and the group's class lines fall more than 4 to an L1 set
/// (64 sets of 64-byte lines: a class stride of `k` lines reaches `64 / gcd(k, 64)` sets).
/// Elsewhere the copy costs 2-4% (8x21x100x100, 64x3x64x64, 4x1000x16x16, measured).
pub(super) fn wants_column<E: Elem>(len: usize, inner: usize) -> bool {
    let stride = inner * std::mem::size_of::<E>();
    let sets = if !stride.is_multiple_of(64) {
        64
    } else {
        64 >> ((stride / 64) % 64).trailing_zeros().min(6)
    };
    if std::mem::size_of::<E>() < 4 {
        len <= COLUMN_MAX
    } else {
        len <= 256 && len > 4 * sets
    }
}

/// log_softmax of a `len x inner` block over its `len` axis (classes strided by `inner`),
/// 16 lanes at a time: [`lane_stats`], then `out = ((x - m) - lse)` in float64, rounded once.
/// `scratch` holds the [`Column`], if any.
///
/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW (the float32 kernels call this only at the AVX-512 level). Lengths are checked: `x` and `out` must hold `len * inner` elements or it panics.
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
pub(crate) unsafe fn block_log_softmax<E: Elem>(
    x: &[E],
    out: &mut [MaybeUninit<E>],
    len: usize,
    inner: usize,
    scratch: &mut Vec<f32>,
) {
    // SAFETY: AVX-512 is this function's contract; `as_native` needs the check `native_bf16_for` just made (AVX512-BF16, `E` is bfloat16); the body asserts the lengths its pointer arithmetic relies on.
    unsafe {
        if native_bf16_for::<E>() {
            return block_log_softmax_native(as_native(x), as_native_out(out), len, inner, scratch);
        }
        block_log_softmax_body(x, out, len, inner, scratch)
    }
}

/// [`block_log_softmax`] for bfloat16 where the CPU converts to it ([`NativeBf16`]).
///
/// # Safety
///
/// AVX-512 F, DQ, VL, BW and BF16.
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma,avx512bf16")]
pub(super) unsafe fn block_log_softmax_native(
    x: &[NativeBf16],
    out: &mut [MaybeUninit<NativeBf16>],
    len: usize,
    inner: usize,
    scratch: &mut Vec<f32>,
) {
    // SAFETY: the caller's contract (the CPU features); the body checks the lengths.
    unsafe { block_log_softmax_body(x, out, len, inner, scratch) }
}

/// 16-lane groups [`block_log_softmax`] takes together where it tiles ([`tiled`]): a tile is
/// `16 * TILE_GROUPS` lanes. Their statistics are computed one after another, then their writes
/// class by class (a class's 4 groups are 256 contiguous bytes of output): one group's
/// statistics are a long dependency chain (max, sums, log), and the next group's then do not
/// wait behind this one's writes. Four is faster than one, two or eight on every benchmark
/// shape (docs/PERFORMANCE.md, "Measurements behind the kernels").
pub(super) const TILE_GROUPS: usize = 4;

/// Whether [`block_log_softmax`] runs [`TILE_GROUPS`] groups at a time: where it reads through a
/// [`Column`] (in L1), or the class axis is long; without one, 24 to 32 classes were 10-15%
/// slower tiled (8x24x10000, 6x32x10000, 8x21x10000: 5%), 40 the same, 50 and more faster
/// (16x50x1000 6%, 8x100x1000 18%).
pub(super) fn tiled(column: bool, len: usize) -> bool {
    column || len > 40
}

/// # Safety
///
/// AVX-512 F, DQ, VL and BW (lengths are asserted here).
#[inline(always)]
pub(super) unsafe fn block_log_softmax_body<E: Elem>(
    x: &[E],
    out: &mut [MaybeUninit<E>],
    len: usize,
    inner: usize,
    scratch: &mut Vec<f32>,
) {
    // SAFETY: AVX-512 is this function's contract; `x` and `out` hold `len * inner` elements (asserted first), which bounds every lane `tiles` touches.
    unsafe {
        assert!(x.len() >= len * inner && out.len() >= len * inner);
        let column = wants_column::<E>(len, inner);
        let o = out.as_mut_ptr().cast::<E>();
        if tiled(column, len) {
            tiles::<E, TILE_GROUPS>(
                x,
                o,
                inner,
                &mut Column::new(scratch, len, TILE_GROUPS, column),
            );
        } else {
            // a column always tiles
            tiles::<E, 1>(x, o, inner, &mut Column::new(scratch, len, 1, false));
        }
    }
}

/// [`block_log_softmax`] in tiles of `G` groups.
///
/// # Safety
///
/// AVX-512; `x` and `o` hold the block's `col.len * inner` elements.
#[inline(always)]
pub(super) unsafe fn tiles<E: Elem, const G: usize>(
    x: &[E],
    o: *mut E,
    inner: usize,
    col: &mut Column,
) {
    // SAFETY: the caller's contract: every lane `tile` touches (below `inner`, classes below `len`) is inside `x` and `o`.
    unsafe {
        let mut t = 0;
        while t + 16 * G <= inner {
            tile::<E, G, true>(x, o, inner, t, col);
            t += 16 * G;
        }
        if t < inner {
            tile::<E, G, false>(x, o, inner, t, col);
        }
    }
}

/// The `G` groups from lane `t` (fewer if the block's `inner` lanes end first); `FULL` when
/// all of them have 16 lanes, so that every mask is a constant.
///
/// # Safety
///
/// AVX-512; `x` and `o` hold the block's `col.len * inner` elements and `t < inner`.
#[inline(always)]
pub(super) unsafe fn tile<E: Elem, const G: usize, const FULL: bool>(
    x: &[E],
    o: *mut E,
    inner: usize,
    t: usize,
    col: &mut Column,
) {
    // SAFETY: the caller's contract: each group's lanes are below `inner` (`steps` stops there, masks cover partial groups), each class below `len`, so every load and store is inside `x` and `o`; prefetches never fault.
    unsafe {
        let len = col.len;
        col.place(o.add(t) as usize);
        let z = _mm512_setzero_ps();
        // per group: its first lane, its mask, and m + lse per lane as hi + lo (see split_shift)
        let mut groups = [(0, 0, z, z, z); G];
        let mut n = 0;
        for (g, (at, h)) in steps(t, inner.min(t + 16 * G)).enumerate() {
            let h = if FULL { !0 } else { h };
            let st = col.stats(x, inner, at, h, g);
            let m = to_pd(st.m);
            let hi = to_ps([
                _mm512_add_pd(m[0], st.lse[0]),
                _mm512_add_pd(m[1], st.lse[1]),
            ]);
            let h64 = to_pd(hi);
            let lo = to_ps([
                _mm512_add_pd(_mm512_sub_pd(m[0], h64[0]), st.lse[0]),
                _mm512_add_pd(_mm512_sub_pd(m[1], h64[1]), st.lse[1]),
            ]);
            groups[g] = (at, h, hi, _mm512_sub_ps(z, hi), lo);
            n = g + 1;
        }
        for c in 0..len {
            for (g, &(at, h, hi, neg_hi, lo)) in
                groups[..if FULL { G } else { n }].iter().enumerate()
            {
                let h = if FULL { !0 } else { h };
                let v = col.load(x, inner, at, h, c, g);
                // The output line 16 groups on in this class's plane, read into L1 ahead of its
                // store: the store then finds it there (owned: no other core holds it) rather
                // than waiting on a read-for-ownership (measured: docs/PERFORMANCE.md).
                _mm_prefetch::<_MM_HINT_T0>(o.wrapping_add(at + c * inner + 256).cast::<i8>());
                E::store16_masked(o.add(at + c * inner), h, shifted(v, hi, neg_hi, lo));
            }
        }
    }
}

/// Per-lane `(max, lse)` of the lanes `from..from + out.len()` of a `len x inner` block
/// (`scratch` as for [`block_log_softmax`]).
///
/// # Safety
///
/// The CPU has AVX-512 F, DQ, VL and BW. Lengths are checked: `x` must hold `len * inner` elements and `from + out.len() <= inner`, or it panics.
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
pub(crate) unsafe fn block_lse<E: Elem>(
    x: &[E],
    len: usize,
    inner: usize,
    from: usize,
    out: &mut [(f64, f64)],
    scratch: &mut Vec<f32>,
) {
    // SAFETY: AVX-512 is this function's contract; the lengths every load relies on are asserted first; the stores are into local arrays of 16.
    unsafe {
        let to = from + out.len();
        assert!(x.len() >= len * inner && to <= inner);
        let mut col = Column::new(scratch, len, 1, wants_column::<E>(len, inner));
        // nothing is stored meanwhile: any page offset will do
        col.place(0);
        for (at, h) in steps(from, to) {
            let st = col.stats(x, inner, at, h, 0);
            let (mut m, mut lse) = ([0f32; 16], [0f64; 16]);
            _mm512_storeu_ps(m.as_mut_ptr(), st.m);
            _mm512_storeu_pd(lse.as_mut_ptr(), st.lse[0]);
            _mm512_storeu_pd(lse.as_mut_ptr().add(8), st.lse[1]);
            for (l, o) in out[at - from..(to - from).min(at - from + 16)]
                .iter_mut()
                .enumerate()
            {
                *o = (m[l] as f64, lse[l]);
            }
        }
    }
}
