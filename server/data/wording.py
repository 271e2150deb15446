"""The paraphrase grammar's word lists: a train half and a held-out half of every synonym list and sentence shape.

Each entry of `L` (and of `STYLES`, `STYLE_WALK` in wording_styles.py) is a (train, held-out) pair of
'|'-separated options; {side} {n} {q} {it} {arm} {fist} {leg} {where} {ing} and {S} {B} ... are slots the grammar
(`server/data/paraphrase.py`) fills. The halves share only `EXEMPT` words (articles, pronouns,
prepositions, numbers, side words, units); every held-out sentence shape carries a held-out word.
Options state only what a fact (or the source's style label) supports: a list is picked from by
the fact's measured value (a pace list by speed, a height list by the hand's height ...).
"""
from __future__ import annotations

from server.data.wording_styles import STYLE_WALK, STYLES  # noqa: F401  (re-exported)

HALVES = ("train", "heldout")
_NUM = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred").split()
EXEMPT: frozenset[str] = frozenset(
    "a an the this that these those each every some any both all left right is are be can it its he she they them "
    "their his her him themselves himself herself itself of to in on at by for from into onto with without up down "
    "against each other another across "
    "out off over under through toward towards as like if and or but then so not one's once twice times time "
    "degrees metres meters metre meter seconds second per half".split() + _NUM)
"""Function words shared by both halves (and numbers, side words, units); every other word is one half's."""

# (train, held-out) per synonym list; '|' separates entries; {arm} {arms} {fist} {leg} {side} are slots.
L: dict[str, tuple[str, str]] = {
    "subject": (
        "a person|someone|a man|a woman|the person|the man|the woman|a figure|the figure|a dancer|the dancer|"
        "an actor|the actor|a performer|the performer|a character|the character|an athlete|the athlete|a guy|"
        "a lady|a human|the human|a gentleman|a stick figure|an animated character|a motion capture actor|"
        "the subject|a mocap performer|an adult|the avatar|a 3d character|a participant|the participant|"
        "a test subject|a virtual character|a digital human|an animated figure|a cg character|a 3d model|"
        "a skeleton|the skeleton|a virtual human|a model|the model|an animated mannequin|a rigged character|"
        "a game character|a video game character|a cartoon character|a synthetic human|a simulated person|"
        "a digital avatar|a digital actor|a character model|a computer-generated person|a volunteer|"
        "the volunteer|a mocap artist|a motion capture artist|a tracked subject|a test person|a capture subject|"
        "an animated person|the animated person|a 3d person|a virtual person|the virtual person|a digital figure|"
        "the digital figure|a cg figure|the mannequin|a mannequin|a 3d avatar|an avatar|a body|the body|"
        "a rendered figure|a rendered character|a rendered person|a stylized figure|an anonymous performer|"
        "an unnamed actor|an ordinary person|a regular person|a motion-captured person|a tracked performer",
        "an individual|the individual|somebody|a fellow|the fellow|a humanoid|the humanoid|the protagonist"),
    "walk": (
        "walk|march|stride|trek|move|go|travel|proceed|pace|make their way|advance|head|walk along|move along|"
        "step along|make their way along|walk on|progress|stride along|pace along",
        "stroll|amble|saunter|wander|tread"),
    "jog": (
        "jog|trot|run {where} lightly|run {where} at an easy speed|jog {where} lightly|"
        "run {where} at a jogging pace|jog {where} at a steady pace|run {where} at a moderate speed|"
        "trot {where} steadily|jog {where} gently|trot {where} lightly|jog along|trot along|"
        "run {where} at an easy jog",
        "lope|lope {where} at a gentle tempo"),
    "run": (
        "run|dash|race|rush|hurry|speed|dart|bolt|hasten|zoom|run along|race along|hurry along|tear along",
        "sprint|hurtle|charge|career"),
    "forward": (
        "forward|forwards|to the front|toward the front|straight forward|in a forward direction|frontward|"
        "frontwards",
        "ahead|onward|onwards"),
    "backward": (
        "backward|backwards|in reverse|toward the back|in a backward direction|back",
        "rearward|rearwards"),
    "sideways": (
        "sideways to the {side}|to the {side}|sideways toward the {side}|{side}ward|{side}wards|"
        "sidewards to the {side}|off to the {side}|in a sideways direction toward the {side}|"
        "sidelong to the {side}",
        "crabwise to the {side}|laterally to the {side}"),
    "diagonal": ("diagonally forward to the {side}|forward and to the {side}|diagonally to the {side}|"
                 "at an angle to the {side}|forward at a slant to the {side}",
                 "obliquely ahead to the {side}|slantwise to the {side}"),
    "back_diagonal": ("backward and to the {side}|diagonally backward to the {side}",
                      "obliquely rearward to the {side}"),
    "straight": (
        "in a straight line|along a straight path|in a straight path|without turning|along a straight line|"
        "in a direct line|along a direct line|on a straight line",
        "on an unswerving course"),
    "curve": (
        "in a curve to the {side}|along a curve to the {side}|curving to the {side}|in an arc to the {side}|"
        "bending round to the {side}|turning gradually to the {side}|following a curved path to the {side}|"
        "along a bend to the {side}|in a wide curve to the {side}|around a bend to the {side}|"
        "in a sweeping curve to the {side}|looping round to the {side}|wheeling round to the {side}|"
        "in a rounded path to the {side}",
        "arcing to the {side}|swerving to the {side}|veering to the {side}"),
    "circle": (
        "in a circle|in a full circle|around in a circle|in a loop|round in a circle|in a ring|"
        "all the way round in a circle|round and round|in a closed loop|in a round path",
        "on a circular route|in a circuit"),
    "circle_left": ("counterclockwise|to the left", "to the left"),  # parallel lists: mirroring swaps them
    "circle_right": ("clockwise|to the right", "to the right"),
    "across": (
        "across the floor|across the room|over the floor|through the space|across the space|across the area|"
        "along the floor|over the ground|across the capture area|across the floor space|"
        "from one side of the room to the other|through the room|down the room|across the open floor",
        "across the stage"),
    "slow": (
        "slowly|at a slow speed|gently|at a leisurely speed|at a slow pace|calmly|steadily|leisurely|"
        "at a relaxed speed|without hurrying|taking their time|at an easy pace|at a measured pace|in no hurry|"
        "at a sedate pace|at a slow walking pace|at a crawl|step by step|at a dawdling pace|at a plodding pace|"
        "at a snail's pace",
        "unhurriedly|sluggishly|languidly"),
    "fast_walk": (
        "quickly|briskly|fast|at a brisk speed|rapidly|at a quick pace|hurriedly|at a fast speed|"
        "with quick steps|at a hurried pace|with a quick stride|at a rapid pace|at a fast pace|at a good clip|"
        "in a hurry|at a fast walking pace|at a brisk walking pace|at a quick walk",
        "swiftly|hastily|speedily"),
    "fast_run": (
        "very fast|at full speed|as fast as possible|at top speed|at high speed|as quickly as possible|flat out|"
        "at a very high speed|like the wind|at maximum speed|all out|at a blistering pace|at great speed",
        "headlong|at breakneck velocity"),
    "normal_pace": (
        "at a normal pace|at an ordinary pace|at a comfortable pace|at a moderate pace|at an average pace|"
        "at a regular pace|at a natural pace|at an everyday pace|at a medium pace|at a typical walking speed|"
        "at a normal walking speed|at an easy walking pace|at a casual pace|at a steady walking pace|"
        "at a usual pace|at a standard pace|at a conventional pace|at a reasonable pace|at a fair pace|"
        "at an unremarkable pace",
        "at a middling tempo"),
    "run_pace": (
        "at a good speed|at a fair clip|at a running pace|at a quick pace|at a decent speed|at a solid pace|"
        "at a lively pace|at a fast clip|at a brisk running pace|at a healthy clip|at a respectable speed",
        "at a considerable velocity"),
    "speed_n": (
        "at about {n} per second|at roughly {n} per second|at around {n} per second|"
        "at a speed of about {n} per second|moving about {n} each second",
        "at approximately {n} per second"),
    "kmh": ("at about {n} kilometres an hour|at roughly {n} kilometres per hour|at around {n} kilometers per hour|"
        "at a speed of about {n} kilometres an hour|at close to {n} kilometres per hour",
        ""),
    "distance_q": (
        "for {q}|, covering {q}|, travelling {q}|, traveling {q}|, moving {q}|, going {q}|over {q}|"
        "over a distance of {q}|, crossing {q}|, getting {q} from the start|, advancing {q}|, progressing {q}|"
        ", ending up {q} from where they started",
        ""),
    "loco_time": ("for about {n} seconds|for {n} seconds or so|for roughly {n} seconds|over about {n} seconds|"
        "for around {n} seconds|for some {n} seconds|for nearly {n} seconds",
        "for approximately {n} seconds"),
    "steps_q": (", taking {q}|in {q}|with {q}|, making {q}|, in the space of {q}",
        ""),
    "steps_n": ("{n} steps|about {n} steps|{n} paces|roughly {n} steps|{n} footsteps|around {n} steps", ""),
    "steps_few": ("a few steps|a couple of steps|a few paces", ""),
    "steps_handful": ("a handful of steps|a handful of paces|half a dozen steps or so", ""),
    "steps_dozen": ("about a dozen steps|a dozen or so steps|roughly a dozen paces", ""),
    "steps_many": ("many steps|lots of steps|a long series of steps|plenty of steps|a great many steps", ""),
    "dist_n": ("about {n} metres|roughly {n} metres|around {n} meters|some {n} metres|about {n} meters", ""),
    "dist_short": ("less than a metre|under a metre|barely a metre", ""),
    "dist_one": ("about a metre|a metre or so|roughly a metre", ""),
    "dist_couple": ("a couple of metres|two metres or so|a couple of meters", ""),
    "dist_few": ("a few metres|a few meters", ""),
    "dist_several": ("several metres|quite a few metres|several meters", ""),
    "dist_far": ("more than ten metres|over ten metres|well over ten metres", ""),
    "veer": ("bearing slightly to the {side}|drifting to the {side}|curving slightly to the {side}|"
        "angling slightly to the {side}|bending slightly to the {side}|drifting slightly {side}ward|"
        "edging to the {side}|bearing {side}|with a slight curve to the {side}|easing over to the {side}",
        "veering marginally to the {side}"),
    "start_rest": ("from a standstill|from standing still|from rest|from a still start",
        ""),
    "distance": ("for about {n} metres|for roughly {n} meters|, covering about {n} metres|"
                 ", covering around {n} meters|over about {n} metres|for a distance of about {n} metres",
                 "for approximately {n} metres|, spanning approximately {n} meters"),
    "when_start": (
        "at the beginning|at the start|early on|in the first moments|straight away|to begin with|"
        "immediately|first thing|from the start",
        "in the initial seconds"),
    "when_mid": (
        "midway through|halfway through|in the middle of the clip|partway through|about halfway|after a while",
        "mid-clip"),
    "when_end": (
        "toward the end|at the end|near the end|in the final moments|at the very end|just before the end|"
        "as the clip ends|finally|lastly|in the last moments|at the finish",
        "in the closing seconds"),
    "facing": ("while facing forward|while still facing forward|with the body facing forward|"
               "without turning the body", ""),
    "no_turn": ("without turning around|while facing forward|without turning the body", ""),
    "face_back": ("to face the opposite direction|to face the other way|to face backward", ""),
    "turn_moving": (
        "without stopping|while on the move|as they go|while moving|without breaking stride|on the move|"
        "still moving|in mid-stride|partway along|in stride|while travelling|as they travel|"
        "while keeping the momentum|without pausing",
        ""),
    "turn_deg": ("by about {n} degrees|about {n} degrees|through about {n} degrees|roughly {n} degrees|"
        "by roughly {n} degrees|some {n} degrees",
        "through approximately {n} degrees"),
    "turn_here": (
        "in place|on the spot|where they stand|without stepping away|without moving the feet much|"
        "on the same spot|standing in place|without walking",
        ""),
    "turn_fast": (
        "quickly|rapidly|sharply|in one quick motion|abruptly|suddenly|briskly|in a flash|smartly",
        "swiftly"),
    "turn_slow": (
        "slowly|gradually|bit by bit|steadily|little by little|carefully",
        "unhurriedly"),
    "long_steps": (
        "with long strides|taking long steps|with big steps|with a long stride|with wide strides|in long strides|"
        "with generous strides|with lengthy strides|with large steps",
        ""),
    "short_steps": (
        "with short steps|taking small steps|in small steps|with little steps|with tiny steps|with short strides|"
        "with small strides|in short steps|with a short stride",
        ""),
    "hop_free": (", with the other foot lifted|, keeping the other foot off the ground|, holding the other leg up",
                 ""),
    "punch_full": (", straightening the arm|, with the arm fully straightened", ""),
    "kick_straight": (", with a straight leg|, straightening the leg", ""),
    "bent_knees": ("with bent knees|with the knees bent", ""),
    "shoulder_level": (
        "at shoulder height|at shoulder level|level with the shoulder|to about shoulder height|"
        "up to the shoulder|as high as the shoulder|to the height of the shoulder|just about shoulder high",
        ""),
    "clap_where": ("in front of the body|in front of the chest", ""),
    "short_way": ("a short distance|a little way", ""),
    "long_way": ("a long way|a long distance|a good distance", ""),
    "steps": (", taking {n} steps|in {n} steps|, taking about {n} steps|with {n} steps", ""),
    "duration": (
        "for a moment|for a few seconds|briefly|for a while|for about {n} seconds|for a couple of seconds|"
        "for a second or two|for several seconds|for a short while|for a brief moment|for a beat|"
        "for a short time|for a little while|for a couple of moments|for roughly {n} seconds",
        "momentarily|for an instant"),
    "turn_side": (
        "{side}|to the {side}|to face the {side}|toward the {side}",
        "{side}|to the {side}|toward the {side}"),
    "turn": (
        "turn|rotate|turn the body|turn around|swing|twist|rotate the body|wheel|swing the body round|"
        "turn themselves",
        "pivot|swivel"),
    "turn_round": (
        "turn|rotate|swing around|wheel around|twist around|swing round|turn round|come round",
        "pivot|swivel"),
    "spin": ("spin|turn|spin around|whirl around", "revolve|twirl|pivot"),
    "light": ("make|do", "perform|execute"),
    "quarter": ("90 degrees|about 90 degrees|by 90 degrees", "ninety degrees|by ninety degrees"),
    "quarter_n": ("a quarter turn|a 90 degree turn|a quarter of a turn", "a ninety-degree pivot"),
    "half": ("around|180 degrees|halfway around", "one hundred and eighty degrees"),
    "half_n": ("a half turn|a 180 degree turn|a u-turn", "an about-face|a one-eighty"),
    "full": ("all the way around|360 degrees|a full circle|through a full circle", "three hundred and sixty degrees"),
    "full_n": ("a full turn|a full spin|a 360 degree turn|a full rotation",
               "a complete revolution|one whole revolution"),
    "jump": (
        "jump|spring|bounce|jump up|jump into the air|spring up|bounce up",
        "leap|bound"),
    "in_place": (
        "in place|on the spot|up and down|on both feet|with both feet|with feet together|where they stand|"
        "on the same spot|off the ground|without moving from the spot",
        "vertically|two-footed"),
    "high": ("high|really high", ""),
    "jump_n": ("do {n} jumps|make {n} jumps|do {n} little jumps|take {n} jumps", "perform {n} leaps"),
    "small_jump_n": ("do {n} small jumps|make {n} tiny jumps|do {n} little jumps", "perform {n} modest leaps"),
    "hop": ("hop {where} on the {side} foot|hop {where} on the {side} leg|hop {where} on just the {side} foot|"
            "hop {where} using just the {side} leg",
            "leap {where} on the {side} limb alone|bound {where} on the {side} limb only"),
    "crouch": ("squat|crouch|squat down|crouch down|drop into a squat|bend the knees deeply|get into a squat|"
               "go down into a crouch|lower the body into a squat|bend down into a squat|duck down|"
               "lower into a crouch|hunch down|get down low", "hunker down|sink onto the haunches"),
    "sit": ("sit down|sit|take a seat|sit down low|lower into a seated position|"
            "lower themselves into a sitting position", "perch|settle down"),
    "kneel": ("kneel down on the {side} knee|go down on the {side} knee|kneel on the {side} knee|"
              "drop onto the {side} knee|bend down onto the {side} knee|put the {side} knee on the ground",
              "genuflect"),
    "kneel_both": ("kneel|kneel down|drop to the knees|kneel on both knees|go down on both knees|"
                   "get down on the knees|kneel on the ground", "genuflect"),
    "lie": ("lie down|lie on the ground|lie on the floor|lie down on the ground|lie flat on the ground|"
            "get down on the ground|lie down on the floor|stretch out on the ground", "recline|sprawl out"),
    "get_up": ("get up|stand up|rise|get back up|rise to the feet|stand back up|get to the feet|pull themselves up|"
               "push up to standing|return to standing|come back up to standing|stand up again|get back on the feet|"
               "straighten up", "arise|clamber up"),
    "stop": (
        "stop|pause|come to a stop|stand still|stop moving|hold still|come to a standstill|stop in place|"
        "come to rest|stand still for a bit|stop for a bit|come to a rest|stop briefly",
        "halt"),
    "stand": (
        "stand still|stand in place|stay still|remain standing|stand on the spot|stand quietly|keep still|"
        "stand motionless|stand without moving|stay in place|stand upright|stand idle|stand around|wait|"
        "stay standing|stand at rest|stand relaxed|stand calmly|stand in a relaxed pose|stand in a neutral pose|"
        "stand waiting|stay put|stand there|hold position",
        "linger|loiter"),
    "hand": ("hand|arm", "palm|limb"),
    "raise_face": (
        "to head height|up to face level|to the height of the face|up beside the head|to about ear level|"
        "up to chin height|up to eye level|level with the head|up by the face|beside the face|"
        "to the level of the face|up to about head level|to ear height|level with the ear|alongside the head",
        ""),
    "raise_over": (
        "raise {arm} above the head|raise {arm} over the head|lift {arm} above the head|put {arm} up in the air|"
        "hold {arm} up high|stretch {arm} up above the head|reach up high with {arm}|"
        "lift {arm} high into the air|throw {arm} up in the air|shoot {arm} up into the air|"
        "stretch {arm} high above the head|hold {arm} straight up|reach {arm} up toward the sky|"
        "lift {arm} straight above the head|raise {arm} high above the head|stick {arm} up in the air|"
        "fling {arm} up into the air|keep {arm} raised above the head|raise {arm} up over the head|"
        "reach {arm} up high|stretch {arm} upward|point {arm} up at the sky|point {arm} straight up|"
        "put {arm} up above the head|bring {arm} up above the head|hold {arm} up above the head|"
        "send {arm} up above the head|swing {arm} up over the head|sweep {arm} up above the head|"
        "lift {arm} up toward the sky|pull {arm} up above the head|carry {arm} up over the head|"
        "push {arm} up into the air|stretch {arm} up to the sky|raise {arm} way up|"
        "lift {arm} as high as possible",
        "hoist {arm} overhead|elevate {arm} skyward|thrust {arm} toward the ceiling"),
    "raise_up": (
        "raise {arm}|lift {arm}|raise {arm} up|lift {arm} up|bring {arm} up|put {arm} up|hold {arm} up|"
        "lift {arm} partway up|keep {arm} raised|move {arm} upward|draw {arm} up|pull {arm} up|lift {arm} upward|"
        "hold {arm} raised|bring {arm} upward",
        "hoist {arm}|elevate {arm}"),
    "lower_again": ("lower {it} again|bring {it} back down|drop {it} back down|put {it} down again|"
        "let {it} fall back down|"
        "lower {it} back down|return {it} to the side|lower {it} to the side again|bring {it} down again|"
        "drop {it} to the side",
        ""),
    "post_conn": (", then |, and then | and then ",
        ""),
    "arm_forward": (
        "stretch {arm} forward|hold {arm} out in front|reach forward with {arm}|stretch {arm} out in front|"
        "hold {arm} straight out in front|point {arm} forward|reach {arm} out forward|"
        "stretch {arm} out toward the front|raise {arm} in front|push {arm} out in front|hold {arm} forward|"
        "put {arm} out in front|aim {arm} forward|lift {arm} out in front",
        "extend {arm} ahead"),
    "arm_side": (
        "hold {arm} out to the side|stretch {arm} out to the side|hold {arm} out sideways|"
        "stick {arm} out to the side|hold {arm} out horizontally|raise {arm} out to the side|"
        "hold {arm} out level to the side|stretch {arm} sideways|lift {arm} out to the side|"
        "put {arm} out to the side|swing {arm} out to the side|hold {arm} out straight to the side|"
        "stretch {arm} out level",
        "extend {arm} laterally"),
    "arms_side": (
        "spread {arm} out to the sides|hold {arm} out wide|spread {arm} wide|stretch {arm} out to the sides|"
        "spread {arm} apart|open {arm} wide|hold {arm} out in a t-pose|hold {arm} out to both sides|"
        "stretch {arm} wide apart|fling {arm} out to the sides|open {arm} out to the sides|"
        "put {arm} out to the sides|spread {arm} out like wings|hold {arm} out like wings",
        "splay {arm} laterally|extend {arm} laterally"),
    "wave": (
        "wave {arm}|wave with {arm}|wave {arm} from side to side|wave {arm} back and forth|wave {arm} in the air|"
        "give a wave with {arm}|wave {arm} side to side|wave {arm} about|swing {arm} from side to side|"
        "sway {arm} from side to side|move {arm} back and forth|shake {arm} from side to side|"
        "wiggle {arm} side to side|signal with {arm}|make a waving motion with {arm}|do a wave with {arm}|"
        "flag {arm} back and forth|swish {arm} from side to side|rock {arm} from side to side|"
        "wave {arm} to the side and back",
        "waggle {arm}|wag {arm} to and fro"),
    "wave_big": ("in big sweeping motions|with wide swings|with big swings|broadly|in wide arcs|"
        "with large sweeping movements|expansively|with a big, sweeping motion",
        ""),
    "wave_small": ("with small movements|with little swings|with a small motion|with tiny swings|in small arcs|subtly|"
        "discreetly|with a slight motion of the hand",
        ""),
    "wave_fast": ("quickly|rapidly|fast|hurriedly|in quick succession|at a fast rhythm",
        ""),
    "wave_slow": ("slowly|lazily|at a slow rhythm|in slow sweeps|leisurely",
        ""),
    "fist": ("fist|hand", ""),
    "punch": ("punch with {fist}|punch forward with {fist}|strike with {fist}|throw a punch with {fist}|"
              "hit out with {fist}|box with {fist}|swing a punch with {fist}|hit forward with {fist}|"
              "punch straight out with {fist}", "jab with {fist}|deliver a blow with {fist}"),
    "fast_punch": ("fast|quickly|sharply|rapidly", "swiftly"),
    "clap": ("clap|clap the hands|clap the hands together|bring the hands together|applaud|slap the hands together|"
             "clap both hands together|bring both hands together in a clap",
             "smack the palms|smack the palms against each other"),
    "leg": ("leg|foot", "limb"),
    "kick": (
        "kick with {leg}|kick forward with {leg}|kick out with {leg}|do a kick with {leg}|"
        "swing {leg} up in a kick|throw a kick with {leg}|launch a kick with {leg}|kick {leg} forward|"
        "kick {leg} out|boot forward with {leg}|swing {leg} forward in a kick|strike out with {leg}|"
        "kick {leg} up|snap {leg} out in a kick",
        "lash out with {leg}|flick {leg} out"),
    "kick_side": ("kick out to the side with {leg}|kick sideways with {leg}|kick {leg} out to the side|"
                  "do a side kick with {leg}", "lash out laterally with {leg}"),
    "kick_high": (
        "high|up high|above waist height|well above the waist|as high as the chest|high into the air",
        "skyward"),
    "kick_low": ("low|close to the ground|at shin height|near the floor|low to the ground",
        ""),
    "kick_knee": ("to about knee height|to knee level|up to knee height|as high as the knee",
        ""),
    "kick_hip": ("to about hip height|up to hip level|to waist height|to about waist level|up to the waist",
        ""),
    "jump_running": ("while running|mid-run|out of the run|in the middle of the run|from one foot to the other|"
        "off one foot|"
        "taking off from one foot|in a running stride|with a long running stride|without stopping the run",
        ""),
    "running_jump": ("take a running jump|make a running jump|do a running jump|jump off one foot|spring off one foot",
        ""),
    "jump_small": ("a little|slightly|just a little|a short way up|low",
        ""),
    "jump_big": (
        "high into the air|high off the ground|way up|up high|with a lot of height",
        ""),
    "bend": (
        "bend forward|bend over|bow|lean forward|bend at the waist|bow down|hunch over|stoop forward|lean over|"
        "bend the upper body forward|bow forward|bend down|bend the trunk forward|curl forward|"
        "fold forward at the waist|tip the upper body forward|lean the chest forward|bend forward at the hips|"
        "bend the back forward|tilt the upper body forward|tilt forward|dip forward|bend the chest forward|"
        "drop the chest forward",
        "hinge at the pelvis|incline the torso"),
    "straighten": ("straighten up again|come back up|stand up straight again|return to upright|straighten back up|"
        "rise back up|come back to upright|straighten up",
        ""),
    "deep": ("deeply|far forward|a long way down|very low", "profoundly"),
    "slight": ("slightly|a little|a bit|just a little", "marginally"),
    "lean_back": (
        "lean back|lean backward|arch the back|lean backwards|arch backward|bend backward|tilt backward|"
        "lean the upper body back|bend the upper body back|tip backward|tilt the upper body back|"
        "lean the chest back|throw the head back and lean back|bend the back backward|lean away backward",
        "recline rearward|incline rearward"),
    "again": ("again|once more|one more time|a second time|another time|anew",
        ""),
    "off_ground": ("stay off the ground|stay up off the floor|keep both feet off the floor|stay above the floor|"
        "remain off the ground|keep the feet off the ground|stay up above the ground", ""),
    "keep_up": (
        "keep {it} there|hold {it} there|keep {it} up|hold {it} up",
        ""),
    "hold_end": ("until the end|to the end of the clip|for the rest of the clip|until the clip ends|"
        "all the way to the end",
        ""),
    "count2": (
        "twice|two times|a couple of times|twice in succession|two times altogether|twice over",
        "twice in a row|two times in a row"),
    "count": (
        "{n} times|{n} times in succession|{n} times over|{n} separate times|{n} times altogether|"
        "{n} times one after another|{n} consecutive times|{n} times back to back",
        "{n} times in a row|a total of {n} times"),
    "count_many": (
        "several times|repeatedly|multiple times|over and over|again and again|time after time|numerous times|"
        "many times",
        "repetitively|on {n} occasions"),
    "seq": (
        ", then |, then |, and then | and then |, after that, |, and next | before {ing}|, followed by {ing}|"
        ", and after that, |, and once that is done, |, and shortly after, |, and soon after, |, next, |"
        ", following that, |, just after that, |, immediately after, |, and straight after that, |"
        ", and following this, |, and next, |, once finished, |, when done, |, after this, |, thereafter, |"
        ", a moment after that, ",
        ", and afterwards | and subsequently |, and later "),
    "with": (
        " and | while {ing}| while {ing}|, {ing}| while also {ing}|, at the same time {ing}|"
        " and at the same time | as well as {ing}| together with {ing}|, all the while {ing}| and also |"
        " alongside {ing}| and concurrently ",
        " whilst {ing}| and meanwhile "),
    "last": (
        ", and finally | and lastly |, and at the end |, ending by {ing}|, and to finish, |, and in the end |"
        ", finishing with {ing}|, and lastly, |, before finally {ing}|, and to wrap up, |, and to conclude, |"
        ", concluding by {ing}",
        ", and eventually "),
    "frame": (
        "{S} {B}|{S} {B}|{S} {B}|{S} is {Bing}|{S} {Bpast}|in this clip, {S} {B}|in this animation, {S} {B}|"
        "the motion shows {S} {Bing}|the clip shows {S} {Bing}|a clip of {S} {Bing}|an animation of {S} {Bing}|"
        "the video shows {S} {Bing}|{S} is shown {Bing}|the animation depicts {S} {Bing}|"
        "in this sequence, {S} {B}|in the clip, {S} {B}|during this clip, {S} {B}|"
        "the character animation shows {S} {Bing}|this clip shows {S} {Bing}|this animation shows {S} {Bing}|"
        "this motion capture clip shows {S} {Bing}|in this motion capture clip, {S} {B}|"
        "in this short clip, {S} {B}|in this take, {S} {B}|the sequence shows {S} {Bing}|"
        "the animation features {S} {Bing}|the clip depicts {S} {Bing}|{S} is depicted {Bing}|"
        "{S} is captured {Bing}|we see {S} {Bing}|we watch {S} {Bing}|a motion capture clip of {S} {Bing}|"
        "a short animation of {S} {Bing}|a mocap clip of {S} {Bing}|in this animated clip, {S} {B}|"
        "the mocap data shows {S} {Bing}|the captured motion shows {S} {Bing}|this is a clip of {S} {Bing}|"
        "the scene shows {S} {Bing}|this motion features {S} {Bing}|the movement shows {S} {Bing}|"
        "in this motion, {S} {B}|in the animation, {S} {B}|this sequence captures {S} {Bing}|"
        "the clip presents {S} {Bing}|the capture shows {S} {Bing}|the data shows {S} {Bing}|"
        "{Clip} {Shows} {S} {Bing}|{Clip} {Shows} {S} {Bing}|{Clip} {Shows} {S} {Bing}|in {Clip}, {S} {B}|"
        "in {Clip}, {S} {B}|we see {S} {Bbase}|we watch {S} {Bbase}|watch {S} {Bbase}|take a look at {S} {Bing}|"
        "the motion of {S} {Bing}|the movement of {S} {Bing}|{S} can be watched {Bing}|an example of {S} {Bing}|"
        "{Clip} shows how {S} {B}|{Clip} is an example of how {S} {B}|{Clip} captures how {S} {B}",
        "{S} can be seen {Bing}|{S} was {Bing}|in this recording, {S} {B}|here, {S} {B}|"
        "in the footage, {S} {Bpast}"),
    "arms_swing": (
        "swinging the arms|with the arms swinging|swinging both arms|with a natural arm swing|"
        "with arms swinging at the sides|with the arms swinging freely",
        ""),
    "arms_wide": ("swinging the arms widely|with big arm swings|with the arms swinging high|"
        "with a big swing of the arms|swinging the arms far forward and back", ""),
    "arms_pump": ("pumping the arms|with the arms pumping|pumping both arms hard|driving the arms back and forth", ""),
    "arms_still": ("with the arms hardly swinging|barely swinging the arms|with little arm swing|"
        "with the arms held still|keeping the arms still|without swinging the arms|with stiff arms", ""),
    "feet_together": ("with the feet together|with the feet close together|standing with the feet together|"
        "keeping the feet together|with the heels together|with the legs together", ""),
    "feet_apart": ("with the feet apart|standing with the feet apart|with the feet shoulder-width apart|"
        "with the legs apart|with a wide stance|standing with the legs apart|with the feet planted apart|"
        "in a wide stance", ""),
    "feet_wide": ("with the feet wide apart|in a very wide stance|with the legs spread wide|"
        "standing with the feet far apart", ""),
    "raise_quick": ("quickly|rapidly|in one quick motion|with a quick movement|briskly|sharply|suddenly|abruptly|"
        "in a flash|snappily|in one fast movement", ""),
    "raise_slow": ("slowly|gradually|little by little|steadily|bit by bit|carefully|with a slow movement|"
        "at a leisurely rate|without haste", "languidly|unhurriedly"),
    "arm_straight": ("with a straight arm|keeping the arm straight|with the elbow straight|with the arm held straight|"
        "with the elbow locked|with the arm stretched out straight", ""),
    "arm_bent": ("with the elbow bent|with a bent arm|bending the elbow|with the arm bent at the elbow|"
        "with a crooked elbow|keeping the elbow bent", ""),
    "arm_straight_both": ("with straight arms|keeping both arms straight|with the elbows straight|"
        "with the arms held straight|with the elbows locked", ""),
    "arm_bent_both": ("with the elbows bent|with bent arms|bending the elbows|with both arms bent at the elbow|"
        "keeping the elbows bent", ""),
    "after_n": ("after about {n} seconds|after roughly {n} seconds|{n} seconds in|after some {n} seconds|"
        "about {n} seconds in", ""),
    "clip_noun": (
        "the clip|this clip|the animation|this animation|the sequence|this sequence|the video|the motion|"
        "this motion|the scene|this take|the capture|the mocap data|the motion data|this short clip|"
        "this brief clip|the snippet|this snippet|the excerpt|this excerpt|the segment|this segment|the shot|"
        "this demo|the demonstration|this example|the sample|this trial|the performance|the render|the rendering|"
        "the playback|the visualization|the preview|the replay|this loop|the animated clip|this motion capture|"
        "this mocap take|the 3d animation|the character animation|the movement data|this short animation|"
        "the motion sequence|this piece of motion capture|the animation clip|this animation clip|the motion clip|"
        "this motion clip|the mocap clip|this mocap sequence|the frames|these frames|the motion file|"
        "this motion file|the animation file|the tracked motion|the captured data",
        ""),
    "shows": (
        "shows|depicts|features|presents|captures|illustrates|displays|portrays|contains|documents|demonstrates|"
        "reveals|includes|pictures|exhibits|shows us|gives us|showcases|highlights|has|offers a view of|"
        "gives a view of|presents a sample of|offers an example of",
        ""),
    "frame_seq": (
        "first, {S} {B}|{S} starts by {C1ing}, then {R}|after {C1ing}, {S} {R}|{S} begins by {C1ing}, then {R}|"
        "to begin, {S} {B}|at first, {S} {B}|to start, {S} {B}|{S} starts off {C1ing}, then {R}|"
        "{S} opens by {C1ing}, then {R}|{S} first {B}|starting out, {S} {B}",
        "at the outset, {S} {C1}, and later {R}"),
    "frame_with": (
        "{C1ing}, {S} {R}|while {C1ing}, {S} {R}",
        "{S} {C1}, simultaneously {Ring}"),
}
