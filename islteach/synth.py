r"""A synthetic microscope with known truth: cells, nuclei, fluorescence and label-free images.

:func:`make_field` draws a field of touching cells, each with one nucleus, and
renders it five ways with a simple, documented optical model. Every quantity is
known exactly (instance labels of nuclei and cells), so a chapter can check that a
method works before it meets real data, and the label-free -> fluorescence mapping
is learnable but not trivial.

Specimen (pixel units, field grown by a margin and cropped at the end so cells are
cut by the border as in a real image)
    * Cell centres: random points at least ``spacing * cell_radius`` apart. Cell ``i``
      is the part of its Voronoi region within a wobbly radius
      :math:`R_i(\theta) = R_i (1 + a_2\cos(2\theta+\phi_2) + a_3\cos(3\theta+\phi_3))`,
      so neighbouring cells touch along straight membranes.
    * Nucleus ``i``: a rotated ellipse (semi-axes 0.3-0.5 :math:`R_i`) slightly off
      the cell centre, clipped to cell ``i``. ``nuclei`` and ``cells`` share ids.
    * Optical path difference :math:`\varphi` (radians; weak phase object): a thin
      cytoplasm dome per cell (random per-cell height), a thicker nuclear dome with
      2-3 dense nucleoli, cytoplasmic granules, and some debris outside the cells that
      has no fluorescence. Absorption :math:`A` is 5 % of the nuclear dome.

Imaging
    * ``brightfield`` (Z, H, W): the weak-phase-object contrast transfer function at
      defocus :math:`z`, in Fourier space
      :math:`\hat I_z(q) = \delta(q) + [2\sin(\pi\lambda z q^2)\,\hat\varphi(q)
      - 2\cos(\pi\lambda z q^2)\,\hat A(q)]\,E_z(q)\,P(q)` with a partial-coherence
      envelope :math:`E_z(q) = \exp(-(\pi\,\mathrm{NA_c}\,z\,q)^2)` and objective
      pupil :math:`P(q) = \exp(-(q\lambda/\mathrm{NA})^2)`: cells almost vanish in focus and
      appear with opposite contrast above and below focus (transport of intensity).
      Times an illumination ramp, then shot noise (``photons_bf`` photons at background).
    * ``phase`` (H, W): Zernike phase contrast with its halo,
      :math:`I = 1 - \gamma\,(\varphi - G_{\sigma_h} * \varphi)` blurred by the PSF,
      so objects are dark with a bright halo; shot noise.
    * ``dapi`` (H, W): DNA density (per-nucleus brightness drawn independently of
      :math:`\varphi`, chromatin texture, dim nucleoli) blurred by a Gaussian PSF, plus
      background, with shot noise; in photon counts.
    * ``cellmask`` (H, W): membranes (2-pixel cell borders) plus weak cytoplasm,
      blurred, background, shot noise; in photon counts.

The nuclear brightness in ``dapi`` is independent of anything visible in the
label-free images, and debris and granules look like small cells there, so a
network must learn shape and texture cues and cannot reach a perfect correlation.

Difficulty
    One scalar knob, ``difficulty`` in [0, 1], sets how visible the nuclei are in the
    label-free images (:func:`difficulty_settings` gives the mapping): the nuclear dome's
    optical path and absorption shrink (nuclear phase and absorption contrast
    :math:`\times (1 - 0.85\,d)`, so at ``d = 1`` the nucleus is hardly thicker than
    the cytoplasm around it and is seen mostly through its nucleoli and the absence of
    granules), the bright-field planes move further from focus (defocus
    :math:`\times (1 + d)`, more blur from the condenser's partial coherence) and fewer
    photons reach the camera (``photons_bf`` :math:`/ (1 + 9 d)`, more shot noise in the
    bright-field and phase-contrast images). ``difficulty=0`` is the default microscope
    (identical arrays to a call without it); the specimen (geometry, labels, DAPI,
    CellMask) does not depend on it.

Examples
--------
>>> from islteach.synth import make_field
>>> f = make_field(size=128, seed=0)
>>> sorted(f)
['brightfield', 'cellmask', 'cells', 'dapi', 'nuclei', 'optical_path', 'phase', 'z_um']
>>> f["brightfield"].shape, f["nuclei"].dtype.name
((5, 128, 128), 'int32')
"""
from __future__ import annotations

import functools

import numpy as np
from scipy import fft as sfft
from scipy import ndimage as ndi

__all__ = ["make_field", "make_fields", "difficulty_settings", "DIFFICULTY_FACTORS"]

_MARGIN = 16

#: How ``difficulty`` d in [0, 1] scales the label-free imaging (see :func:`difficulty_settings`):
#: nuclear optical path and absorption x (1 - nuclear * d), defocus x (1 + defocus * d),
#: bright-field photons / (1 + noise * d).
DIFFICULTY_FACTORS = {"nuclear": 0.85, "defocus": 1.0, "noise": 9.0}


def difficulty_settings(difficulty: float = 0.0) -> dict:
    """The imaging settings one ``difficulty`` (0 = the default microscope, 1 = the hardest) maps to.

    Parameters
    ----------
    difficulty : float
        In [0, 1]: how hard the nuclei are to see in the label-free images.

    Returns
    -------
    dict
        ``nuclear_contrast`` (factor on the nuclear dome's optical path and absorption),
        ``defocus`` (factor on ``z_um``), ``photons_bf`` (factor on the bright-field photon
        count): all 1 at ``difficulty=0``.

    Examples
    --------
    >>> difficulty_settings(0.0)
    {'nuclear_contrast': 1.0, 'defocus': 1.0, 'photons_bf': 1.0}
    >>> {k: round(v, 3) for k, v in difficulty_settings(1.0).items()}
    {'nuclear_contrast': 0.15, 'defocus': 2.0, 'photons_bf': 0.1}
    """
    if isinstance(difficulty, bool) or not isinstance(difficulty, (int, float, np.integer, np.floating)):
        raise ValueError(f"difficulty must be a number in [0, 1], got {difficulty!r}")
    d = float(difficulty)
    if not 0.0 <= d <= 1.0:
        raise ValueError(f"difficulty must be a number in [0, 1], got {difficulty!r}")
    f = DIFFICULTY_FACTORS
    return {"nuclear_contrast": 1.0 - f["nuclear"] * d, "defocus": 1.0 + f["defocus"] * d,
            "photons_bf": 1.0 / (1.0 + f["noise"] * d)}


@functools.lru_cache(maxsize=8)
def _freq(n: int, pixel_um: float):
    """Squared spatial frequency grids for an rfft2 of an n x n image: (cycles/um)^2 and (cycles/px)^2."""
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    q2_px = (fy ** 2 + fx ** 2).astype(np.float32)
    return q2_px / np.float32(pixel_um ** 2), q2_px


def _gauss_otf(q2_px, sigma):
    return np.exp(-2.0 * np.pi ** 2 * sigma ** 2 * q2_px).astype(np.float32)


def _rfft(a):
    return sfft.rfft2(np.asarray(a, np.float32))


def _irfft(a, n):
    return sfft.irfft2(a, s=(n, n)).astype(np.float32, copy=False)


def _blur(img, q2_px, sigma):
    return _irfft(_rfft(img) * _gauss_otf(q2_px, sigma), img.shape[0])


@functools.lru_cache(maxsize=1)
def _normal_bank() -> np.ndarray:
    """2**22 standard normal samples (fixed seed), drawn once per process."""
    return np.random.default_rng(20240521).standard_normal(1 << 22, dtype=np.float32)


def _normals(rng, shape) -> np.ndarray:
    """Standard normal noise of ``shape``: a window of the bank at a seeded random offset.

    Four times faster than drawing fresh samples; a window is white noise, and its
    offset (hence the noise) is fixed by the field's seed.
    """
    bank = _normal_bank()
    size = int(np.prod(shape))
    if size > bank.size // 2:
        return rng.standard_normal(shape, dtype=np.float32)
    start = int(rng.integers(0, bank.size - size))
    return bank[start:start + size].reshape(shape)


def _shot_noise(rng, photons_expected):
    """Photon counts with shot noise around ``photons_expected`` (float32, integer-valued).

    The Gaussian limit of Poisson noise (variance = mean, rounded and clipped at 0):
    indistinguishable from Poisson at the counts used here and much faster to draw.
    """
    lam = np.clip(photons_expected, 0, None).astype(np.float32, copy=False)
    out = lam + np.sqrt(lam) * _normals(rng, lam.shape)
    return np.clip(np.rint(out, out=out), 0, None, out=out)


def _centres(rng, n_side, min_dist, n_max):
    """Random points in [0, n_side)^2 at least ``min_dist`` apart (dart throwing on a grid hash)."""
    cand = rng.uniform(0, n_side, size=(n_max * 6, 2))
    cs = float(min_dist)
    grid: dict = {}
    pts = []
    d2 = min_dist * min_dist
    for y, x in cand.tolist():
        gy, gx = int(y // cs), int(x // cs)
        ok = True
        for j in (gy - 1, gy, gy + 1):
            for i in (gx - 1, gx, gx + 1):
                for (py, px) in grid.get((j, i), ()):
                    if (py - y) ** 2 + (px - x) ** 2 < d2:
                        ok = False
                        break
                if not ok:
                    break
            if not ok:
                break
        if ok:
            grid.setdefault((gy, gx), []).append((y, x))
            pts.append((y, x))
            if len(pts) >= n_max:
                break
    return np.array(pts, np.float64).reshape(-1, 2)


def make_field(size: int = 256, seed: int = 0, *, cell_radius: float = 14.0, spacing: float = 1.35,
               density: float = 0.5, z_um=(-4.0, -2.0, 0.0, 2.0, 4.0), pixel_um: float = 0.5,
               wavelength_um: float = 0.55, na: float = 0.45, na_condenser: float = 0.12,
               psf_sigma: float = 1.2, photons: float = 300.0, photons_bf: float = 2000.0,
               noise: bool = True, difficulty: float = 0.0) -> dict:
    """One synthetic field with known nuclei and cells, fluorescence and label-free images.

    Parameters
    ----------
    size : int
        Output side in pixels (>= 32).
    seed : int
        Seed; the same seed and parameters give identical arrays.
    cell_radius : float
        Mean cell radius in pixels.
    spacing : float
        Minimum distance between cell centres in units of ``cell_radius`` (smaller =
        more touching cells and nuclei).
    density : float
        Fraction of the packing limit filled with cells (0-1].
    z_um : sequence of float
        Defocus of the bright-field planes in micrometres (0 = in focus).
    pixel_um, wavelength_um, na, na_condenser : float
        Pixel size, wavelength, objective and condenser numerical apertures.
    psf_sigma : float
        Gaussian PSF sigma in pixels (fluorescence and phase contrast).
    photons, photons_bf : float
        Photon scale of the fluorescence peak and of the bright-field/phase background.
    noise : bool
        Add shot noise (``False``: expected images).
    difficulty : float
        In [0, 1]: how hard the nuclei are to see in the label-free images (nuclear phase and
        absorption contrast, defocus, bright-field photons; :func:`difficulty_settings`).
        It scales ``z_um`` and ``photons_bf``; 0 leaves everything as given.

    Returns
    -------
    dict
        ``nuclei``, ``cells``: (size, size) int32 instance labels (nucleus ``i`` lies in
        cell ``i``; 0 = background); ``dapi``, ``cellmask``: (size, size) float32 photon
        counts; ``brightfield``: (len(z_um), size, size) float32 (background about 1);
        ``phase``: (size, size) float32 phase contrast (background about 1);
        ``optical_path``: (size, size) float32 the true phase shift in radians;
        ``z_um``: (Z,) float64 the defocus of each bright-field plane.

    Examples
    --------
    >>> a, b = make_field(64, seed=3), make_field(64, seed=3)
    >>> bool((a["dapi"] == b["dapi"]).all())
    True
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 32:
        raise ValueError(f"size must be an int >= 32, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not cell_radius > 2 or not spacing > 0 or not 0 < density <= 1:
        raise ValueError(f"need cell_radius > 2, spacing > 0, 0 < density <= 1; got {cell_radius}, {spacing}, {density}")
    z_um = np.atleast_1d(np.asarray(z_um, dtype=np.float64))
    if z_um.ndim != 1 or z_um.size == 0:
        raise ValueError(f"z_um must be a non-empty 1-D sequence of defocus values, got {z_um!r}")

    knob = difficulty_settings(difficulty)
    z_um = z_um * knob["defocus"]
    photons_bf = float(photons_bf) * knob["photons_bf"]
    rng = np.random.default_rng(int(seed))
    n = int(size) + 2 * _MARGIN
    q2_um, q2_px = _freq(n, float(pixel_um))
    otf_psf = _gauss_otf(q2_px, psf_sigma)
    # the random draws happen in this order: geometry, optical path, illumination, noise
    g = _specimen_geometry(rng, n, float(cell_radius), spacing, density)
    phi, absorb, nuc_dome, nucleoli, tex = _optical_path(rng, g, q2_px, knob["nuclear_contrast"])
    dapi, cellmask = _fluorescence(g, nuc_dome, nucleoli, tex, otf_psf)
    bright, phase = _label_free(rng, g, phi, absorb, q2_um, q2_px, otf_psf, z_um, wavelength_um, na,
                                na_condenser)
    return _crop_and_noise(rng, size, g, phi, dapi, cellmask, bright, phase, z_um, photons, photons_bf, noise)


def _specimen_geometry(rng, n: int, R: float, spacing: float, density: float) -> dict:
    """Cell centres, per-cell parameters, Voronoi cells with wobbly outlines and elliptic nuclei.

    Returns a dict with the (n, n) maps ``vor`` (Voronoi id), ``cells``, ``nuclei``,
    ``cell_in``, ``nuc_in``, ``rho`` (radius / outline radius), ``e2`` (squared elliptic
    radius of the nucleus), the grids ``yy``, ``xx``, and the per-cell tables (index 0
    unused) ``Ri``, ``na_``, ``nb_``, ``ncy``, ``ncx``, ``h_cyto``, ``h_nuc``, ``dna``; ``k``
    cells.
    """
    min_dist = spacing * R
    n_max = max(1, int(density * n * n / (0.9 * min_dist ** 2)))
    pts = _centres(rng, n, min_dist, n_max)
    k = len(pts)
    iy = np.clip(pts[:, 0].astype(int), 0, n - 1)
    ix = np.clip(pts[:, 1].astype(int), 0, n - 1)
    seeds = np.ones((n, n), bool)
    seeds[iy, ix] = False
    ids_img = np.zeros((n, n), np.int32)
    ids_img[iy, ix] = np.arange(1, k + 1)
    _, (ny, nx) = ndi.distance_transform_edt(seeds, return_indices=True)
    vor = ids_img[ny, nx]  # Voronoi region id, 1..k
    del ny, nx
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)

    def per(a):  # per-cell parameter table, index 0 unused
        return np.concatenate([[0], a]).astype(np.float32)

    Ri = per(R * rng.uniform(0.8, 1.2, k))
    a2, a3 = rng.uniform(0, 0.15, k), rng.uniform(0, 0.1, k)
    p2, p3 = rng.uniform(0, 2 * np.pi, k), rng.uniform(0, 2 * np.pi, k)
    ang = rng.uniform(0, np.pi, k)
    na_ = per(rng.uniform(0.38, 0.55, k))  # nucleus semi-axes / R
    nb_ = na_ * per(rng.uniform(0.65, 1.0, k))
    off_r, off_t = rng.uniform(0, 0.2, k), rng.uniform(0, 2 * np.pi, k)
    cy, cx = per(pts[:, 0]), per(pts[:, 1])
    ncy = per(pts[:, 0] + off_r * Ri[1:] * np.sin(off_t))
    ncx = per(pts[:, 1] + off_r * Ri[1:] * np.cos(off_t))
    h_cyto = per(rng.uniform(0.10, 0.22, k))
    h_nuc = per(rng.uniform(0.15, 0.30, k))
    dna = per(rng.lognormal(0.0, 0.35, k))  # DNA brightness, independent of the optical path

    # cell outline R(theta) = R (1 + a2 cos(2 theta + p2) + a3 cos(3 theta + p3)), trig-free
    dy, dx = yy - cy[vor], xx - cx[vor]
    r = np.sqrt(dy * dy + dx * dx) + np.float32(1e-6)
    c, s_ = dx / r, dy / r
    c2, s2 = c * c - s_ * s_, 2 * c * s_
    c3, s3 = c * (4 * c * c - 3), s_ * (3 - 4 * s_ * s_)
    A2c, A2s = per(a2 * np.cos(p2)), per(a2 * np.sin(p2))
    A3c, A3s = per(a3 * np.cos(p3)), per(a3 * np.sin(p3))
    Rth = Ri[vor] * (1 + A2c[vor] * c2 - A2s[vor] * s2 + A3c[vor] * c3 - A3s[vor] * s3)
    rho = r / Rth
    cell_in = rho < 1
    cells = np.where(cell_in, vor, 0).astype(np.int32)

    ey, ex = yy - ncy[vor], xx - ncx[vor]
    ca, sa = per(np.cos(ang)), per(np.sin(ang))
    u = (ca[vor] * ex + sa[vor] * ey) / (na_ * Ri)[vor]
    v = (ca[vor] * ey - sa[vor] * ex) / (nb_ * Ri)[vor]
    e2 = u * u + v * v
    nuc_in = (e2 < 1) & cell_in
    nuclei = np.where(nuc_in, vor, 0).astype(np.int32)
    return {"k": k, "vor": vor, "yy": yy, "xx": xx, "rho": rho, "e2": e2, "cell_in": cell_in,
            "nuc_in": nuc_in, "cells": cells, "nuclei": nuclei, "Ri": Ri, "na_": na_, "nb_": nb_,
            "ncy": ncy, "ncx": ncx, "h_cyto": h_cyto, "h_nuc": h_nuc, "dna": dna}


def _optical_path(rng, g: dict, q2_px, nuclear_contrast: float = 1.0):
    """Optical path difference (radians) and absorption of the specimen :func:`_specimen_geometry` drew.

    ``nuclear_contrast`` scales the nuclear dome's optical path and absorption (1: the default).

    Returns
    -------
    phi, absorb : (n, n) float32
    nuc_dome, nucleoli, tex : (n, n)
        Nuclear dome, blurred nucleoli and the chromatin / granule texture, reused by
        :func:`_fluorescence`.
    """
    k, vor, cell_in, nuc_in, cells = g["k"], g["vor"], g["cell_in"], g["nuc_in"], g["cells"]
    rho, e2, Ri, na_, nb_, ncy, ncx = g["rho"], g["e2"], g["Ri"], g["na_"], g["nb_"], g["ncy"], g["ncx"]
    n = vor.shape[0]
    cyto_dome = np.sqrt(np.clip(1 - rho * rho, 0, 1)) * cell_in
    nuc_dome = np.sqrt(np.clip(1 - e2, 0, 1)) * nuc_in
    # point sources: 2-3 nucleoli per nucleus, debris in the background; blurred in one pass
    n_nl = rng.integers(2, 4, k)
    owner = np.repeat(np.arange(1, k + 1), n_nl)
    t, rr = rng.uniform(0, 2 * np.pi, owner.size), rng.uniform(0, 0.55, owner.size)
    py = (ncy[owner] + rr * (nb_ * Ri)[owner] * np.sin(t)).astype(int)
    px = (ncx[owner] + rr * (na_ * Ri)[owner] * np.cos(t)).astype(int)
    ok = (py >= 0) & (py < n) & (px >= 0) & (px < n)
    spots = np.zeros((n, n), np.float32)
    np.add.at(spots, (py[ok], px[ok]), 1.0)
    n_deb = int(rng.poisson(0.15 * k + 1))
    dpos = rng.integers(0, n, size=(n_deb, 2))
    keep = cells[dpos[:, 0], dpos[:, 1]] == 0
    np.add.at(spots, (dpos[keep, 0], dpos[keep, 1]), rng.uniform(4, 10, n_deb)[keep])
    spots = _blur(spots, q2_px, 1.4) * 6.0
    nucleoli = np.clip(spots, 0, 1) * nuc_in
    debris = spots * (cells == 0)
    # one blurred noise field: chromatin texture in nuclei, granules in the cytoplasm (disjoint)
    tex = _blur(_normals(rng, (n, n)), q2_px, 1.2) * np.float32(2.5)
    granules = np.clip(tex, 0, None) * (cell_in & ~nuc_in)
    h_nuc = g["h_nuc"] * np.float32(nuclear_contrast) if nuclear_contrast != 1.0 else g["h_nuc"]
    phi = (g["h_cyto"][vor] * cyto_dome + h_nuc[vor] * nuc_dome + 0.06 * nucleoli
           + 0.05 * granules + 0.25 * debris).astype(np.float32)
    absorb = (0.05 * h_nuc[vor] * nuc_dome + 0.03 * debris).astype(np.float32)
    return phi, absorb, nuc_dome, nucleoli, tex


def _fluorescence(g: dict, nuc_dome, nucleoli, tex, otf_psf):
    """Expected DAPI and CellMask images (before the photon scale and shot noise), (n, n) each."""
    vor, cells, cell_in, nuc_in = g["vor"], g["cells"], g["cell_in"], g["nuc_in"]
    n = vor.shape[0]
    chrom = np.clip(1.0 + 0.3 * tex, 0.2, None)
    dna_map = g["dna"][vor] * nuc_in * chrom * (0.6 + 0.4 * nuc_dome) * (1 - 0.5 * nucleoli)
    border = np.zeros((n, n), bool)  # cell pixels with a 4-neighbour of another id (2-pixel membranes)
    dv, dh = cells[1:] != cells[:-1], cells[:, 1:] != cells[:, :-1]
    border[1:] |= dv
    border[:-1] |= dv
    border[:, 1:] |= dh
    border[:, :-1] |= dh
    border &= cells > 0
    memb = border.astype(np.float32) + 0.12 * cell_in
    bg_f = np.float32(0.03)
    dapi = _irfft(_rfft(dna_map) * otf_psf, n) + bg_f
    cellmask = _irfft(_rfft(memb) * otf_psf, n) * np.float32(0.8) + bg_f
    return dapi, cellmask


def _label_free(rng, g: dict, phi, absorb, q2_um, q2_px, otf_psf, z_um, wavelength_um, na, na_condenser):
    """Expected bright-field planes (Z, n, n) and Zernike phase contrast (n, n) under a tilted illumination."""
    yy, xx = g["yy"], g["xx"]
    n = yy.shape[0]
    ramp_t = rng.uniform(0, 2 * np.pi)
    illum = 1.0 + np.float32(0.08 / n) * ((yy - n / 2) * np.float32(np.sin(ramp_t))
                                          + (xx - n / 2) * np.float32(np.cos(ramp_t)))
    Phi, Ab = _rfft(phi), _rfft(absorb)
    pupil = np.exp(-q2_um * (wavelength_um / na) ** 2).astype(np.float32)
    planes = []
    for z in z_um:
        chi = np.float32(np.pi * wavelength_um * z) * q2_um
        env = np.exp(np.float32(-(np.pi * na_condenser * z) ** 2) * q2_um) * pupil
        tf = (2 * np.sin(chi) * env) * Phi - (2 * np.cos(chi) * env) * Ab
        planes.append(illum * (1.0 + _irfft(tf, n)))
    bright = np.stack(planes)
    halo = _irfft(Phi * ((1 - _gauss_otf(q2_px, 6.0)) * otf_psf), n)
    phase = illum * (1.0 - np.float32(0.9) * halo)
    return bright, phase


def _crop_and_noise(rng, size, g, phi, dapi, cellmask, bright, phase, z_um, photons, photons_bf, noise) -> dict:
    """Crop the margin, renumber the instances, add shot noise: :func:`make_field`'s output dict."""
    crop = (slice(_MARGIN, _MARGIN + size), slice(_MARGIN, _MARGIN + size))
    nuc_c, cell_c = _relabel_pair(g["nuclei"][crop], g["cells"][crop])
    out = {"nuclei": nuc_c, "cells": cell_c}
    dapi, cellmask = dapi[crop].astype(np.float32), cellmask[crop].astype(np.float32)
    bright, phase = bright[(slice(None),) + crop], phase[crop].astype(np.float32)
    if noise:
        pf, pb = np.float32(photons), np.float32(photons_bf)
        dapi = _shot_noise(rng, dapi * pf)
        cellmask = _shot_noise(rng, cellmask * pf)
        bright = _shot_noise(rng, bright * pb) / pb
        phase = _shot_noise(rng, phase * pb) / pb
    else:
        dapi, cellmask = dapi * np.float32(photons), cellmask * np.float32(photons)
    out.update(dapi=dapi.astype(np.float32), cellmask=cellmask.astype(np.float32),
               brightfield=bright.astype(np.float32), phase=phase.astype(np.float32),
               optical_path=phi[crop].copy(), z_um=z_um.copy())
    return out


def _relabel_pair(nuclei, cells):
    """Renumber the cells in the crop 1..m, keeping nucleus i in cell i (a cell may have lost its nucleus to the crop)."""
    ids = np.unique(cells)
    ids = ids[ids > 0]
    lut = np.zeros(max(int(cells.max()), int(nuclei.max())) + 1, np.int32)
    lut[ids] = np.arange(1, len(ids) + 1, dtype=np.int32)
    return lut[nuclei], lut[cells]


def make_fields(n: int, size: int = 256, seed: int = 0, **kwargs) -> list[dict]:
    """``n`` fields with seeds ``seed, seed + 1, ...`` (see :func:`make_field`)."""
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    return [make_field(size, seed + i, **kwargs) for i in range(n)]
