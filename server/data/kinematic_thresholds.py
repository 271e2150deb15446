"""The kinematic fact extractor's thresholds (`server/data/kinematics.py`): one documented, frozen dataclass.

Units: metres, seconds, m/s, degrees. The evaluation passes its own copy (`dataclasses.replace`)
where it needs other values; captions use `DEFAULT_THRESHOLDS`.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    """Every threshold of the fact extractor. Units: metres, seconds, m/s, degrees."""

    smooth_s: float = 0.5
    """Moving-average window (s) on root trajectory and facing before differentiating."""
    min_segment_s: float = 0.6
    """Base activities (standing, walking, sitting ...) shorter than this (s) merge into a neighbour."""
    walk_min_speed: float = 0.3
    """m/s: below this horizontal root speed the body stays in place (standing sway < 0.15 m/s)."""
    jog_min_speed: float = 2.0
    """m/s: walk/jog boundary (walk-to-run transition speed ~2.0 m/s; real walks reach 1.93)."""
    run_min_speed: float = 2.6
    """m/s: jog/run boundary (~9.4 km/h; real 'run' clips sit at 2.4-3.7, dashes 2.5-4.2)."""
    gait_jog_min_speed: float = 1.4
    """m/s: a locomotion segment with a running gait (flight phases) is at least a jog from here."""
    run_flight_fraction: float = 0.05
    """Share of a segment's frames with both feet off the ground that makes its gait running."""
    min_locomotion_distance: float = 0.6
    """m: a moving stretch that covers less than this is standing (a step into a punch)."""
    forward_cone_deg: float = 25.0
    """Mean body-frame velocity within this angle (deg) of facing is forward (of its back: backward)."""
    sideways_cone_deg: float = 30.0
    """... within this angle of the body's left or right is sideways; between the cones: diagonal."""
    veer_min_deg: float = 20.0
    """Travel direction change (deg) over a locomotion segment for a path that veers (bears slightly) to a side;
    below it: straight (straight walks and runs: 99% within 12 deg; DeepMimic 'veer left/right' runs: 23-34)."""
    curve_min_deg: float = 45.0
    """Travel direction change (deg) over a locomotion segment for a curved path."""
    heading_window: float = 0.2
    """Share of a locomotion segment at each end whose median travel directions give the direction change
    (their difference over 1 - this share: the change over the whole segment at a steady turning rate)."""
    circle_min_deg: float = 300.0
    """Travel direction change (deg) for walking in a circle."""
    turn_rate_deg_s: float = 30.0
    """Facing yaw rate (deg/s, smoothed) that starts a turn."""
    turn_gap_s: float = 0.5
    """Pauses up to this long (s) inside a turn in one direction join it."""
    turn_min_deg: float = 60.0
    """Smallest net facing change (deg) reported as a turn (a quarter turn is 60-135; boxers twist +-50)."""
    turn_hold_s: float = 0.5
    """s: the new facing must hold this long (median before vs after), so a twist that swings back is no turn."""
    half_turn_deg: float = 135.0
    """From this net yaw change (deg) a turn is a half turn (turning around)."""
    full_turn_deg: float = 270.0
    """From this net yaw change (deg) a turn is a full turn (count = round(deg / 360))."""
    floor_max: float = 0.1
    """m: the floor is the 2nd percentile of the lowest foot point, at most this high (y = 0 nominal)."""
    heel_offset: float = 0.06
    """m: heel sits this far below the ankle joint (the foot's low point is min(toe, ankle - this))."""
    contact_height: float = 0.05
    """m: a foot whose low point is below this height above the floor touches the ground."""
    min_flight_s: float = 0.1
    """s: both feet off the ground at least this long is a flight (jump, hop or running stride)."""
    max_flight_s: float = 1.2
    """s: longer airborne stretches are not jumps (hanging, floating)."""
    off_ground_s: float = 1.2
    """s: both feet `off_ground_height` above the floor at least this long is being off the ground (climbing,
    hanging from a bar, up on playground equipment): a base activity of its own, so root motion there is no walk."""
    off_ground_height: float = 0.3
    """m: the lower foot this high above the floor is off the ground (CMU walks on a floor that drifts by 4-9 cm
    lose foot contact without leaving the ground)."""
    landing_window_s: float = 0.15
    """s: window before take-off and after landing in which we look for which feet touch."""
    jump_rise: float = 0.05
    """m: pelvis peak during a flight above its lowest point in the 0.5 s before take-off, for a jump or hop."""
    leap_min_flight_s: float = 0.3
    """s: a flight from one foot to the other this long is a running jump (a leap), not a running stride
    (real running strides: at most 0.25 s in the air; DeepMimic leaps over obstacles: 0.45-0.6 s)."""
    leap_rise: float = 0.2
    """m: pelvis rise of a running jump (running strides rise at most 0.18 m; leaps 0.38-0.58 m)."""
    crouch_height: float = 0.75
    """Pelvis height / standing pelvis height at or below which a bent-knee pose is a crouch or sit."""
    crouch_knee_deg: float = 60.0
    """Knee flexion (deg, 0 = straight) of both knees for crouching or sitting."""
    sit_hip_deg: float = 60.0
    """Hip flexion (deg between thigh and the downward torso axis) for sitting."""
    sit_behind: float = 0.2
    """m: pelvis behind the ankles (along facing) for sitting on a seat; over the feet is a squat."""
    floor_sit_height: float = 0.35
    """Pelvis height ratio at or below which an upright torso with bent hips is sitting on the floor."""
    kneel_height: float = 0.15
    """m: a knee joint below this height above the floor rests on the ground (kneeling)."""
    kneel_pelvis: float = 0.8
    """Pelvis height ratio at or below which a knee on the ground is kneeling."""
    lie_height: float = 0.45
    """Pelvis height ratio at or below which a torso tilted past `lie_torso_deg` is lying."""
    lie_torso_deg: float = 55.0
    """deg: torso (pelvis to neck) angle from vertical for lying."""
    hold_min_s: float = 0.3
    """s: an arm pose (raised, forward, to the side) or a torso bend held at least this long."""
    overhead_margin: float = 0.12
    """m: wrist above the head joint by this much is raised above the head (the SMPL head joint sits at jaw level,
    0.13 m above the shoulders and about 0.12 m below the crown: a hand beside the face is not above the head)."""
    raise_margin: float = -0.05
    """m: wrist above the shoulder by this much (negative: below) is a raised hand."""
    raise_lead_s: float = 0.5
    """s: before a raise starts (the wrist passing the shoulder) its rise speed is also looked at (`Fact.rate`)."""
    raise_drop: float = 0.2
    """m: between two raises of one hand the wrist drops this far below the shoulder; short of that it is one
    raise (a waving hand swinging out to the side, a raised hand dipping)."""
    arm_extended: float = 0.8
    """Shoulder-wrist distance / arm length from which the arm is stretched."""
    reach_ratio: float = 0.65
    """Wrist ahead of (or out beside) the shoulder by this share of the arm length: stretched forward (to the side)."""
    level_ratio: float = 0.4
    """|wrist - shoulder| height within this share of the arm length: the stretched arm is level."""
    wave_amplitude: float = 0.03
    """m: peak-to-peak side-to-side swing of the wrist about the elbow that counts as a wave swing (the Bandai
    'feminine' waves swing 2.7-3.3 cm, the wave being in the hand: at 6 cm 15% of the labelled waves went unseen,
    at 3 cm 6%, with 8 of 2,418 other Bandai clips showing a wave)."""
    wave_half_period_s: float = 0.8
    """s: the longest swing (half a wave) of a waving hand; slower sways are not waving (real slow waves: 0.6 s)."""
    wave_forearm_up: float = 0.02
    """m: a waving hand's wrist is at least this far above its elbow (forearm raised; punches swing level)."""
    wave_min_cycles: int = 2
    """Back-and-forth cycles (a wave each) of a raised hand for a waving fact."""
    punch_speed: float = 1.0
    """m/s: forward wrist speed (relative to the shoulder) of a punch's extension (real CMU punches: 1-1.3)."""
    punch_bent: float = 0.65
    """Arm extension ratio the arm starts a punch from (within `punch_window_s`)."""
    punch_extended: float = 0.85
    """Arm extension ratio a punch reaches."""
    punch_window_s: float = 0.4
    """s: a punch goes from bent to extended within this time."""
    clap_distance: float = 0.15
    """m: wrists closer than this are hands together (a clap)."""
    clap_open: float = 0.3
    """m: hands must part this far between two claps."""
    clap_height: float = 0.25
    """m: both wrists this far above the pelvis (chest level) to clap; running arm swings cross lower."""
    kick_height: float = 0.35
    """m: ankle height above the floor reached by a kick."""
    kick_reach: float = 0.3
    """m: horizontal ankle distance from the pelvis at the kick's peak."""
    kick_extension: float = 0.8
    """Hip-ankle distance / leg length at the kick's peak (a straightened leg, not a knee lift)."""
    kick_speed: float = 2.0
    """m/s: ankle speed on the way to the kick's peak."""
    kick_low_height: float = 0.15
    """m: a lower kick (a ball on the ground) reaches this ankle height ..."""
    kick_low_speed: float = 3.5
    """m/s: ... swinging this fast relative to the pelvis (real ball kicks 2.8-4.8; running swings <= 3.0)."""
    bend_deg: float = 35.0
    """deg: forward torso tilt (pelvis to neck, from vertical) of bending forward."""
    bow_deg: float = 28.0
    """deg: forward torso tilt that is bending forward while the body stays in place (a bow; real bows tilt 25-40
    deg; moving bodies lean up to 30 deg into a run, so there `bend_deg` holds)."""
    lean_back_deg: float = 15.0
    """deg: backward torso tilt of leaning back."""


DEFAULT_THRESHOLDS = Thresholds()
