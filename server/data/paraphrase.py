"""Captions from kinematic facts, with a paraphrase grammar split into a train half and a held-out half.

The train half writes training captions; the held-out half never appears in training text and
only serves the evaluation (prompts worded in a way the model never saw). The halves are
disjoint in content words: everything outside `EXEMPT` (articles, pronouns, prepositions,
numbers, side words, units) belongs to exactly one half, and every held-out sentence shape
carries a held-out marker word ('whilst', 'afterwards', 'seen' ...), so a word check also
catches shapes. Captions state only facts found in the motion, plus the source's own style
label; mirrored clips swap every side word (`swap_sides`).

    g = Grammar("train"); g.caption(facts, random.Random(0), style="happy")
    captions_for_clip(facts, ["a person walks forward happily"], rng=0, n=10)
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache

from server.data.kinematics import LOCOMOTION, POSTURES, Fact, MotionFacts, Segment

HALVES = ("train", "heldout")
_NUM = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred").split()
EXEMPT: frozenset[str] = frozenset(
    "a an the this that these those each every some any both all left right is are be can it its he she they them "
    "their his her him themselves himself herself itself of to in on at by for from into onto with without up down "
    "against each other another across "
    "out off over under through toward towards as like if and or but then so not one's once twice times time "
    "degrees metres meters metre meter seconds second".split() + _NUM)
"""Function words shared by both halves (and numbers, side words, units); every other word is one half's."""

# (train, held-out) per synonym list; '|' separates entries; {arm} {arms} {fist} {leg} {side} are slots.
L: dict[str, tuple[str, str]] = {
    "subject": ("a person|someone|a man|a woman|the person|the man|the woman|a figure|the figure|a dancer|"
                "the dancer|an actor|the actor|a performer|the performer|a character|the character|an athlete|"
                "the athlete|a guy|a lady|a human|the human|a gentleman|a stick figure|an animated character|"
                "a motion capture actor|the subject|a mocap performer|an adult|the avatar|a 3d character|"
                "a participant|the participant|a test subject|a virtual character|a digital human|"
                "an animated figure|a cg character|a 3d model|a skeleton|the skeleton|a virtual human|a model|"
                "the model|an animated mannequin|a rigged character|a game character|a video game character|"
                "a cartoon character|a synthetic human|a simulated person|a digital avatar|a digital actor|"
                "a character model|a computer-generated person",
                "an individual|the individual|somebody|a fellow|the fellow|a humanoid|the humanoid|the protagonist"),
    "walk": ("walk|march|stride|trek|move|go|travel|proceed|pace|make their way|advance|head|walk along|"
             "move along", "stroll|amble|saunter|wander|tread"),
    "jog": ("jog|trot|run {where} lightly|run {where} at an easy speed|jog {where} lightly|"
            "run {where} at a jogging pace|jog {where} at a steady pace|run {where} at a moderate speed|"
            "trot {where} steadily|jog {where} gently|trot {where} lightly", "lope|lope {where} at a gentle tempo"),
    "run": ("run|dash|race|rush|hurry|speed|dart|bolt|hasten|zoom", "sprint|hurtle|charge|career"),
    "forward": ("forward|forwards|to the front|toward the front", "ahead|onward|onwards"),
    "backward": ("backward|backwards|in reverse|toward the back", "rearward|rearwards"),
    "sideways": ("sideways to the {side}|to the {side}|sideways toward the {side}|{side}ward|{side}wards|"
                 "sidewards to the {side}|off to the {side}", "crabwise to the {side}|laterally to the {side}"),
    "diagonal": ("diagonally forward to the {side}|forward and to the {side}|diagonally to the {side}|"
                 "at an angle to the {side}|forward at a slant to the {side}",
                 "obliquely ahead to the {side}|slantwise to the {side}"),
    "back_diagonal": ("backward and to the {side}|diagonally backward to the {side}",
                      "obliquely rearward to the {side}"),
    "straight": ("in a straight line|along a straight path|in a straight path|without turning|along a straight line",
                 "on an unswerving course"),
    "curve": ("in a curve to the {side}|along a curve to the {side}|curving to the {side}|in an arc to the {side}|"
              "bending round to the {side}|turning gradually to the {side}|following a curved path to the {side}|"
              "along a bend to the {side}", "arcing to the {side}|swerving to the {side}|veering to the {side}"),
    "circle": ("in a circle|in a full circle|around in a circle|in a loop|round in a circle|in a ring",
               "on a circular route|in a circuit"),
    "circle_left": ("counterclockwise|to the left", "to the left"),  # parallel lists: mirroring swaps them
    "circle_right": ("clockwise|to the right", "to the right"),
    "across": ("across the floor|across the room|over the floor|through the space|across the space|across the area|"
               "along the floor|over the ground", "across the stage"),
    "slow": ("slowly|at a slow speed|gently|at a leisurely speed|at a slow pace|calmly|steadily|leisurely|"
             "at a relaxed speed", "unhurriedly|sluggishly|languidly"),
    "fast_walk": ("quickly|briskly|fast|at a brisk speed|rapidly|at a quick pace|hurriedly|at a fast speed|"
                  "with quick steps", "swiftly|hastily|speedily"),
    "fast_run": ("very fast|at full speed|as fast as possible|at top speed|at high speed|as quickly as possible|"
                 "flat out", "headlong|at breakneck velocity"),
    "distance": ("for about {n} metres|for roughly {n} meters|, covering about {n} metres|"
                 ", covering around {n} meters|over about {n} metres|for a distance of about {n} metres",
                 "for approximately {n} metres|, spanning approximately {n} meters"),
    "when_start": ("at the beginning|at the start|early on|in the first moments", "in the initial seconds"),
    "when_mid": ("midway through|halfway through|in the middle of the clip|partway through", "mid-clip"),
    "when_end": ("toward the end|at the end|near the end|in the final moments|at the very end",
                 "in the closing seconds"),
    "facing": ("while facing forward|while still facing forward|with the body facing forward|"
               "without turning the body", ""),
    "no_turn": ("without turning around|while facing forward|without turning the body", ""),
    "face_back": ("to face the opposite direction|to face the other way|to face backward", ""),
    "turn_here": ("in place|on the spot|where they stand|without stepping away", ""),
    "turn_fast": ("quickly|rapidly|sharply|in one quick motion", "swiftly"),
    "turn_slow": ("slowly|gradually|bit by bit", "unhurriedly"),
    "long_steps": ("with long strides|taking long steps|with big steps", ""),
    "short_steps": ("with short steps|taking small steps|in small steps", ""),
    "hop_free": (", with the other foot lifted|, keeping the other foot off the ground|, holding the other leg up",
                 ""),
    "punch_full": (", straightening the arm|, with the arm fully straightened", ""),
    "kick_straight": (", with a straight leg|, straightening the leg", ""),
    "bent_knees": ("with bent knees|with the knees bent", ""),
    "shoulder_level": ("at shoulder height|at shoulder level|level with the shoulder", ""),
    "clap_where": ("in front of the body|in front of the chest", ""),
    "short_way": ("a short distance|a little way", ""),
    "long_way": ("a long way|a long distance|a good distance", ""),
    "steps": (", taking {n} steps|in {n} steps|, taking about {n} steps|with {n} steps", ""),
    "duration": ("for a moment|for a few seconds|briefly|for a while|for about {n} seconds|for a couple of seconds|"
                 "for a second or two|for several seconds|for a short while", "momentarily|for an instant"),
    "turn_side": ("{side}|to the {side}|to face the {side}", "{side}|to the {side}|toward the {side}"),
    "turn": ("turn|rotate|turn the body", "pivot|swivel"),
    "turn_round": ("turn|rotate|swing around|wheel around|twist around|swing round|turn round", "pivot|swivel"),
    "spin": ("spin|turn|spin around|whirl around", "revolve|twirl|pivot"),
    "light": ("make|do", "perform|execute"),
    "quarter": ("90 degrees|about 90 degrees|by 90 degrees", "ninety degrees|by ninety degrees"),
    "quarter_n": ("a quarter turn|a 90 degree turn|a quarter of a turn", "a ninety-degree pivot"),
    "half": ("around|180 degrees|halfway around", "one hundred and eighty degrees"),
    "half_n": ("a half turn|a 180 degree turn|a u-turn", "an about-face|a one-eighty"),
    "full": ("all the way around|360 degrees|a full circle|through a full circle", "three hundred and sixty degrees"),
    "full_n": ("a full turn|a full spin|a 360 degree turn|a full rotation",
               "a complete revolution|one whole revolution"),
    "jump": ("jump|spring|bounce|jump up", "leap|bound"),
    "in_place": ("in place|on the spot|up and down|on both feet|with both feet|with feet together|where they stand|"
                 "on the same spot|straight up|off the ground|without moving from the spot", "vertically|two-footed"),
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
    "stop": ("stop|pause|come to a stop|stand still|stop moving|hold still|come to a standstill|stop in place",
             "halt"),
    "stand": ("stand still|stand in place|stay still|remain standing|stand on the spot|stand quietly|keep still|"
              "stand motionless|stand without moving|stay in place|stand upright|stand idle|stand around",
              "linger|loiter"),
    "hand": ("hand|arm", "palm|limb"),
    "raise_over": ("raise {arm} above the head|raise {arm} over the head|lift {arm} above the head|"
                   "put {arm} up in the air|hold {arm} up high|stretch {arm} up above the head|"
                   "reach up high with {arm}|lift {arm} high into the air|throw {arm} up in the air|"
                   "shoot {arm} up into the air|stretch {arm} high above the head|hold {arm} straight up|"
                   "reach {arm} up toward the sky|lift {arm} straight above the head|"
                   "raise {arm} high above the head|stick {arm} up in the air|fling {arm} up into the air|"
                   "keep {arm} raised above the head",
                   "hoist {arm} overhead|elevate {arm} skyward|thrust {arm} toward the ceiling"),
    "raise_up": ("raise {arm}|lift {arm}|raise {arm} up|lift {arm} up|bring {arm} up|raise {arm} to shoulder height|"
                 "put {arm} up|lift {arm} to shoulder level|hold {arm} up|lift {arm} partway up|keep {arm} raised",
                 "hoist {arm}|elevate {arm}"),
    "arm_forward": ("stretch {arm} forward|hold {arm} out in front|reach forward with {arm}|"
                    "stretch {arm} out in front|hold {arm} straight out in front|point {arm} forward|"
                    "reach {arm} out forward|stretch {arm} out toward the front|raise {arm} in front",
                    "extend {arm} ahead"),
    "arm_side": ("hold {arm} out to the side|stretch {arm} out to the side|hold {arm} out sideways|"
                 "stick {arm} out to the side|hold {arm} out horizontally|raise {arm} out to the side|"
                 "hold {arm} out level to the side|stretch {arm} sideways", "extend {arm} laterally"),
    "arms_side": ("spread {arm} out to the sides|hold {arm} out wide|spread {arm} wide|"
                  "stretch {arm} out to the sides|spread {arm} apart|open {arm} wide|hold {arm} out in a t-pose|"
                  "hold {arm} out to both sides|stretch {arm} wide apart",
                  "splay {arm} laterally|extend {arm} laterally"),
    "wave": ("wave {arm}|wave with {arm}|wave {arm} from side to side|wave {arm} back and forth|"
             "wave {arm} in the air|give a wave with {arm}|wave {arm} side to side|give a little wave with {arm}",
             "waggle {arm}|wag {arm} to and fro"),
    "fist": ("fist|hand", ""),
    "punch": ("punch with {fist}|punch forward with {fist}|strike with {fist}|throw a punch with {fist}|"
              "hit out with {fist}|box with {fist}|swing a punch with {fist}|hit forward with {fist}|"
              "punch straight out with {fist}", "jab with {fist}|deliver a blow with {fist}"),
    "fast_punch": ("fast|quickly|sharply|rapidly", "swiftly"),
    "clap": ("clap|clap the hands|clap the hands together|bring the hands together|applaud|slap the hands together|"
             "clap both hands together|bring both hands together in a clap",
             "smack the palms|smack the palms against each other"),
    "leg": ("leg|foot", "limb"),
    "kick": ("kick with {leg}|kick forward with {leg}|kick out with {leg}|do a kick with {leg}|"
             "swing {leg} up in a kick|throw a kick with {leg}|launch a kick with {leg}|kick {leg} forward|"
             "kick {leg} out", "lash out with {leg}|flick {leg} out"),
    "kick_side": ("kick out to the side with {leg}|kick sideways with {leg}|kick {leg} out to the side|"
                  "do a side kick with {leg}", "lash out laterally with {leg}"),
    "kick_high": ("high|up high|above waist height", "skyward"),
    "bend": ("bend forward|bend over|bow|lean forward|bend at the waist|bow down|hunch over|stoop forward|lean over|"
             "bend the upper body forward|bow forward|bend down|bend the trunk forward|curl forward|"
             "fold forward at the waist", "hinge at the pelvis|incline the torso"),
    "deep": ("deeply|far forward|a long way down|very low", "profoundly"),
    "slight": ("slightly|a little|a bit|just a little", "marginally"),
    "lean_back": ("lean back|lean backward|arch the back|lean backwards|arch backward|bend backward|tilt backward|"
                  "lean the upper body back|bend the upper body back|tip backward",
                  "recline rearward|incline rearward"),
    "count2": ("twice|two times|a couple of times", "twice in a row|two times in a row"),
    "count": ("{n} times|{n} times in succession|{n} times over|{n} separate times",
              "{n} times in a row|a total of {n} times"),
    "count_many": ("several times|repeatedly|multiple times|over and over", "repetitively|on {n} occasions"),
    "seq": (", then |, then |, and then | and then |, after that, |, and next | before {ing}|, followed by {ing}|"
            ", and after that, |, and once that is done, |, and shortly after, |, and soon after, ",
            ", and afterwards | and subsequently |, and later "),
    "with": (" and | while {ing}| while {ing}|, {ing}| while also {ing}|, at the same time {ing}|"
             " and at the same time ", " whilst {ing}| and meanwhile "),
    "last": (", and finally | and lastly |, and at the end |, ending by {ing}", ", and eventually "),
    "frame": ("{S} {B}|{S} {B}|{S} {B}|{S} is {Bing}|{S} {Bpast}|in this clip, {S} {B}|in this animation, {S} {B}|"
              "the motion shows {S} {Bing}|the clip shows {S} {Bing}|a clip of {S} {Bing}|"
              "an animation of {S} {Bing}|the video shows {S} {Bing}|{S} is shown {Bing}|"
              "the animation depicts {S} {Bing}|in this sequence, {S} {B}|in the clip, {S} {B}|"
              "during this clip, {S} {B}|the character animation shows {S} {Bing}",
              "{S} can be seen {Bing}|{S} was {Bing}|in this recording, {S} {B}|here, {S} {B}|"
              "in the footage, {S} {Bpast}"),
    "frame_seq": ("first, {S} {B}|{S} starts by {C1ing}, then {R}|after {C1ing}, {S} {R}|"
                  "{S} begins by {C1ing}, then {R}|to begin, {S} {B}", "at the outset, {S} {C1}, and later {R}"),
    "frame_with": ("{C1ing}, {S} {R}|while {C1ing}, {S} {R}", "{S} {C1}, simultaneously {Ring}"),
}
STYLES: dict[str, tuple[str, str]] = {  # Bandai Namco style labels (labels.csv) -> manner phrases
    "active": ("energetically|with energy|vigorously|actively|in a lively way|with lots of energy|enthusiastically|"
               "eagerly|in an energetic way|full of energy|animatedly|with gusto|with enthusiasm|in a peppy way|"
               "with verve|with pep|vivaciously|with zeal|zealously|with drive",
               "dynamically|spiritedly|with vigour|zestfully"),
    "angry": ("angrily|furiously|in an angry way|with anger|irritably|aggressively|with fury|in a bad temper|"
              "fiercely|in a furious way|heatedly|hotly|with rage|resentfully|in an irritated way|with annoyance|"
              "in a fit of anger|in a huff|belligerently|testily", "crossly|irately|indignantly|wrathfully"),
    "childish": ("like a child|childishly|in a childish way|like a little kid|playfully|like a kid|"
                 "in a childlike way|like a small child|like a little child|like a young child|with childlike joy|"
                 "like a schoolchild|in a babyish way|with childish delight",
                 "like a toddler|boyishly|impishly|like a youngster"),
    "chimpira": ("like a swaggering street thug|like a thug|like a street punk|with a swagger|like a tough guy|"
                 "like a delinquent|in a thuggish way|like a bully|with a cocky swagger|like a hooligan|like a punk|"
                 "like a street tough|in a menacing way|like a gang member|in a cocky way|cockily",
                 "like a hoodlum|like a ruffian|like a gangster"),
    "feminine": ("in a feminine manner|in a feminine way|femininely|gracefully|elegantly|with feminine grace|"
                 "in a graceful way|delicately|softly|with grace|in a womanly way|with poise|smoothly|"
                 "in a refined way", "daintily|in a ladylike fashion"),
    "giant": ("like a heavy giant|like a giant|heavily|like a huge heavy creature|like a large heavy giant|"
              "like a lumbering giant|with great weight|like a big giant|in a heavy way|like a massive giant|"
              "like a heavyweight|like an ogre|like a troll|with thudding steps|ploddingly",
              "like a colossus|ponderously|lumberingly"),
    "happy": ("happily|cheerfully|joyfully|in a happy way|in a cheerful mood|with joy|in high spirits|gladly|"
              "delightedly|in a joyful way|in a good mood|jovially|buoyantly|brightly|contentedly|cheerily|"
              "exuberantly|jauntily|blissfully|ecstatically|elatedly|with a spring in the step",
              "merrily|gleefully|jubilantly|blithely"),
    "masculine": ("in a masculine manner|in a masculine way|in a manly way|manfully|in a manly manner|"
                  "in a masculine style|like a tough man|like a strong man|in a strong masculine way|in a burly way|"
                  "in a brawny way|with masculine confidence|in a sturdy way", "in a macho fashion|ruggedly"),
    "musical": ("theatrically|like in a musical|dramatically|rhythmically|with theatrical flair|in a theatrical way|"
                "with showmanship|like a musical theatre actor|with a flourish|with dramatic flair|"
                "like a musical actor|in a dramatic way|in a performative way|like a broadway performer|"
                "like in a show|with a theatrical touch|in a musical style",
                "melodramatically|like a stage entertainer|showily|flamboyantly"),
    "normal": ("|normally|in an ordinary way|in a normal manner|naturally|in a natural way|in a regular way|"
               "in a standard way|in an everyday way|casually|as usual|in the usual way|"
               "without any particular style|neutrally", "|plainly"),
    "not-confident": ("timidly|without confidence|shyly|nervously|hesitantly|unconfidently|insecurely|uncertainly|"
                      "in an unsure way|self-consciously|with hesitation|awkwardly|anxiously|in a shy way|"
                      "in a timid way|with little confidence|warily|tentatively|cautiously|gingerly|apprehensively|"
                      "uneasily", "meekly|diffidently|sheepishly|bashfully"),
    "old": ("like an old person|like an elderly person|like a senior|in an elderly way|like an old man|"
            "like an older person|like an elderly man|like an aging person|in an old way|like an old woman|"
            "like a grandparent|like a senior citizen|like a grandfather|like an old-timer|"
            "like someone of advanced age|in the manner of an old person",
            "like a pensioner|like an aged individual|frailly"),
    "proud": ("proudly|with pride|confidently|in a proud manner|arrogantly|with confidence|in a self-assured way|"
              "boastfully|with great pride|smugly|self-importantly|with a proud bearing|grandly|triumphantly|"
              "imperiously|majestically|regally|with an air of superiority|nobly",
              "haughtily|loftily|with dignity|pompously"),
    "sad": ("sadly|gloomily|in a sad way|unhappily|miserably|with sadness|in a gloomy way|in a depressed way|"
            "despondently|in a melancholy way|dolefully|in a downcast way|with a heavy heart|in low spirits|"
            "heavy-heartedly|wistfully|bleakly|downheartedly|with a sad air",
            "sorrowfully|mournfully|dejectedly|glumly|forlornly"),
    "tired": ("tiredly|wearily|in a tired way|sleepily|in a weary way|lethargically|with fatigue|in a sleepy way|"
              "like someone tired|with tiredness|groggily|feebly|in a lethargic way|dozily|half-asleep|"
              "like someone who needs sleep", "drowsily|listlessly"),
    "exhausted": ("as if exhausted|in an exhausted way|like someone worn out|with exhaustion|as if worn out|"
                  "in a worn-out way|like an exhausted person|with no energy left|like someone out of breath|"
                  "in a fatigued way|as if completely tired out|with utter exhaustion|"
                  "like someone at the end of their strength|as if on the verge of collapse|"
                  "with the last of their energy", "as if drained|like somebody spent|as if depleted"),
    "youthful": ("youthfully|in a youthful way|with youthful energy|like a young person|with the energy of youth|"
                 "in a young and lively way|like a young adult|like a youth|in a fresh and lively way|"
                 "with a young spirit|with youthful bounce|with the freshness of youth|with a lively young air",
                 "in a sprightly fashion|like a teenager"),
}
STYLES["masculinity"], STYLES["elderly"] = STYLES["masculine"], STYLES["old"]
STYLE_WALK: dict[str, tuple[str, str]] = {  # walking verbs that only the matching style may use
    "tired": ("trudge|plod|drag themselves along|shamble", "slog"), "exhausted": ("trudge|plod|shamble", "slog"),
    "old": ("shuffle|totter|dodder", "hobble"), "elderly": ("shuffle|totter|dodder", "hobble"),
    "proud": ("strut|stalk", "parade"), "chimpira": ("swagger|strut|slouch", "prowl"),
    "angry": ("stomp|storm|stalk", "stamp"),
    "giant": ("lumber|plod|thud", "clomp"), "feminine": ("sashay|glide", "float"), "sad": ("mope|shuffle", "droop"),
    "not-confident": ("creep|edge|shuffle", ""), "childish": ("toddle", "patter"), "musical": ("glide|prance", ""),
}

_PAST = {"run": "ran", "sit": "sat", "spin": "spun", "swing": "swung", "stand": "stood", "get": "got", "rise": "rose",
         "arise": "arose", "lie": "lay", "kneel": "knelt", "stride": "strode", "throw": "threw", "hold": "held",
         "bend": "bent", "strike": "struck", "put": "put", "take": "took", "go": "went", "make": "made", "do": "did",
         "bring": "brought", "sink": "sank", "spring": "sprang", "tread": "trod", "hit": "hit", "come": "came",
         "spread": "spread", "leap": "leapt", "freeze": "froze", "be": "was", "shoot": "shot", "thrust": "thrust",
         "creep": "crept", "fling": "flung", "speed": "sped"}
_DOUBLE = {"run", "sit", "spin", "hop", "jog", "trot", "plod", "strut", "step", "stop", "drop", "slog", "jab", "clap",
           "flap", "wag", "squat", "trek", "get", "put", "hit", "swim", "begin"}


def _inflect(verb: str, form: str) -> str:
    """Form of a verb phrase (first word inflected): 'base', 's', 'ing' or 'past'."""
    head, _, rest = verb.partition(" ")
    if form == "s":
        w = head + ("es" if re.search(r"(s|sh|ch|x|z|o)$", head) else "s")
        w = re.sub(r"([^aeiou])ys$", r"\1ies", w)
    elif form == "ing":
        w = (head[:-2] + "ying" if head.endswith("ie") else head + head[-1] + "ing" if head in _DOUBLE
             else head[:-1] + "ing" if head.endswith("e") and not head.endswith(("ee", "ye", "oe")) else head + "ing")
    elif form == "past":
        w = _PAST.get(head) or (head + head[-1] + "ed" if head in _DOUBLE else head + "d" if head.endswith("e")
                                else head[:-1] + "ied" if re.search(r"[^aeiou]y$", head) else head + "ed")
    else:
        w = head
    return f"{w} {rest}".strip()


_VERBS = {"walk", "jog", "run", "turn", "turn_round", "spin", "light", "jump", "jump_n", "hop", "crouch", "sit",
          "kneel", "kneel_both", "lie", "get_up", "stop", "stand", "raise_over", "raise_up", "arm_forward", "arm_side",
          "arms_side", "wave", "punch", "clap", "kick", "kick_side", "bend", "lean_back"}
WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def words(text: str) -> list[str]:
    """Lower-case word tokens (hyphenated words stay one token: 'about-face', 'counter-clockwise')."""
    return WORD.findall(text.lower())


def _options(half: str, key: str, table: dict = L) -> list[str]:
    return table[key][HALVES.index(half)].split("|") if table[key][HALVES.index(half)] else []


@dataclass(frozen=True)
class Clause:
    """A verb phrase: `verb` (base form; its first word gets inflected) + `tail`; `after`: it follows the
    previous clause in time (else it goes with it)."""

    verb: str
    tail: str = ""
    after: bool = True
    extra: str = ""  # said after any manner phrase: ', covering about three metres'

    def render(self, form: str) -> str:
        text = f"{_inflect(self.verb, form)} {self.tail} {self.extra}".strip()
        return re.sub(r"\s+,", ",", re.sub(r"\s+", " ", text))


def _number(n: int) -> str:
    return _NUM[n] if 0 <= n <= 20 else str(n)


class Grammar:
    """One half of the paraphrase grammar; `caption(facts, rng, style)` writes one caption."""

    def __init__(self, half: str = "train"):
        if half not in HALVES:
            raise ValueError(f"half must be one of {HALVES}, got {half!r}")
        self.half = half

    def pick(self, rng: random.Random, key: str, table: dict = L, **slots) -> str:
        options = _options(self.half, key, table)
        return rng.choice(options).format(**slots) if options else ""

    # --- noun phrases ---------------------------------------------------------------------

    def _part(self, rng: random.Random, side: str | None, key: str = "hand") -> str:
        part = self.pick(rng, key) or "limb"
        if side == "both":
            return "both " + ("feet" if part == "foot" else part + "s")
        return f"the {side} {part}" if side else f"the {part}"

    def _duration(self, rng: random.Random, seconds: float, p: float = 0.3) -> str:
        """Sometimes a phrase for how long a pose or pause lasts (only for 1-6 s: 'for about three seconds')."""
        if not 1.0 <= seconds <= 6.0 or rng.random() >= p:
            return ""
        text = self.pick(rng, "duration", n=_number(int(round(seconds))))
        short = any(w in text for w in ("moment", "brief", "instant"))
        fits = ("about" in text or (short and seconds <= 2.0) or ("couple" in text and 1.5 <= seconds <= 2.5)
                or (("few" in text or "while" in text) and seconds >= 2.5))
        return text if fits else ""

    def _count(self, rng: random.Random, n: int) -> str:
        if n <= 1:
            return ""
        if n >= 3 and rng.random() < 0.2:
            return self.pick(rng, "count_many", n=_number(n))
        return self.pick(rng, "count2") if n == 2 else self.pick(rng, "count", n=_number(n))

    # --- facts -> clauses -----------------------------------------------------------------

    def _direction(self, rng: random.Random, f: Fact) -> str:
        return self.pick(rng, f.detail, side=f.side) if f.detail in L else ""

    def _locomotion(self, rng: random.Random, f: Fact, path: Fact | None, style: str | None) -> Clause:
        verbs = _options(self.half, f.kind)
        if f.kind == "walk" and style in STYLE_WALK and rng.random() < 0.4:
            verbs = _options(self.half, style, STYLE_WALK) or verbs
        verb, where = rng.choice(verbs), self._direction(rng, f)
        if "{where}" in verb:
            verb, where = verb.format(where=where), ""
        parts, extra = [where], ""
        speed = "slow" if f.kind == "walk" and f.value < 0.8 else "fast_walk" if f.kind == "walk" and f.value > 1.6 \
            else "fast_run" if f.kind == "run" and f.value > 3.4 else None
        if speed and rng.random() < 0.7:
            parts.append(self.pick(rng, speed))
        if path is not None and path.detail in ("curve", "circle") and rng.random() < 0.8:
            parts.append(self.pick(rng, path.detail, side=path.side))
            if path.detail == "circle" and rng.random() < 0.5:
                parts.append(self.pick(rng, f"circle_{path.side}"))
        elif path is not None and path.detail == "straight" and rng.random() < 0.2:
            parts.append(self.pick(rng, "straight"))
        if rng.random() < 0.1:
            parts.append(self.pick(rng, "across"))
        if f.detail in ("sideways", "diagonal", "back_diagonal", "backward") and rng.random() < 0.2:
            parts.append(self.pick(rng, "no_turn" if f.detail == "backward" else "facing"))
        if path is not None and (path.value < 2.0 or path.value > 8.0) and rng.random() < 0.3:
            parts.append(self.pick(rng, "short_way" if path.value < 2.0 else "long_way"))
        if path is not None and path.value >= 1.0 and rng.random() < 0.25:
            extra = self.pick(rng, "distance", n=_number(int(round(path.value))))
        elif f.count >= 2 and rng.random() < 0.15:
            extra = self.pick(rng, "steps", n=_number(f.count))
        return Clause(verb, " ".join(p for p in parts if p), extra=extra)

    def _turn(self, rng: random.Random, f: Fact) -> Clause:
        side, size = f.side, f.detail
        if size == "quarter" and rng.random() < 0.4:
            return Clause(self.pick(rng, "turn_round"), self.pick(rng, "turn_side", side=side))
        if size == "half" and f.count == 1 and rng.random() < 0.25:
            return Clause(self.pick(rng, "turn"), f"to the {side} {self.pick(rng, 'face_back')}")
        if rng.random() < 0.5:
            noun = self.pick(rng, f"{size}_n")
            return Clause(self.pick(rng, "light"), f"{noun} to the {side} {self._count(rng, f.count)}")
        verb = self.pick(rng, "spin" if size == "full" else "turn")
        return Clause(verb, f"{self.pick(rng, size)} to the {side} {self._count(rng, f.count)}")

    def _detail(self, rng: random.Random, c: Clause, f: Fact, seg: Segment, fps: float) -> Clause:
        """Sometimes one more fact-grounded detail: a turn on the spot, long strides, a straight leg ..."""
        if c.extra or rng.random() >= 0.3:
            return c
        key, seconds = None, (f.end - f.start) / fps
        path = next((g for g in seg.facts if g.kind == "path"), None)
        if f.kind == "turn":
            key = ("turn_fast" if f.value / max(seconds, 1e-3) >= 150.0 else "turn_slow" if seconds >= 2.5
                   else "turn_here" if seg.base.kind == "stand" else None)
        elif f.kind in LOCOMOTION and path is not None and f.count >= 4:
            stride = path.value / f.count
            key = "long_steps" if stride >= 0.85 else "short_steps" if stride <= 0.45 else None
        else:
            key = {"hop": "hop_free", "punch": "punch_full", "kick": "kick_straight", "crouch": "bent_knees",
                   "sit": "bent_knees", "arm_forward": "shoulder_level", "arm_side": "shoulder_level",
                   "clap": "clap_where"}.get(f.kind)
        phrase = self.pick(rng, key) if key else ""
        if not phrase:
            return c
        return Clause(c.verb, c.tail, c.after, phrase) if phrase.startswith(",") or f.kind in LOCOMOTION \
            else Clause(c.verb, f"{c.tail} {phrase}", c.after, c.extra)

    def _event(self, rng: random.Random, f: Fact) -> Clause | None:
        k, side, n = f.kind, f.side, f.count
        if k == "turn":
            return self._turn(rng, f)
        if k in ("jump", "hop"):
            where = self._direction(rng, f) if f.detail else ""
            if k == "hop":
                return Clause(self.pick(rng, "hop", side=side, where=where), self._count(rng, n))
            if n >= 2 and rng.random() < 0.25:
                return Clause(self.pick(rng, "small_jump_n" if f.value < 0.12 else "jump_n", n=_number(n)), where)
            high = self.pick(rng, "high") if f.value >= 0.35 and rng.random() < 0.6 else ""
            return Clause(self.pick(rng, "jump"), f"{high} {where or self.pick(rng, 'in_place')} {self._count(rng, n)}")
        if k == "get_up":
            return Clause(self.pick(rng, "get_up"))
        if k in ("raise", "arm_forward", "arm_side", "wave"):
            key = {"raise": "raise_over" if f.detail == "overhead" else "raise_up", "arm_forward": "arm_forward",
                   "arm_side": "arms_side" if side == "both" else "arm_side", "wave": "wave"}[k]
            arm = self._part(rng, side, "hand")
            return Clause(self.pick(rng, key, arm=arm), self._count(rng, n))
        if k == "punch":
            fist = self._part(rng, side, "fist") if self.half == "train" else (
                f"the {side}" if side != "both" else "both limbs")
            fast = self.pick(rng, "fast_punch") if f.value >= 3.0 and rng.random() < 0.5 else ""
            return Clause(self.pick(rng, "punch", fist=fist), f"{fast} {self._count(rng, n)}")
        if k == "clap":
            return Clause(self.pick(rng, "clap"), self._count(rng, n))
        if k == "kick":
            leg = self._part(rng, side, "leg")
            high = self.pick(rng, "kick_high") if f.value >= 0.9 and rng.random() < 0.5 else ""
            verb = self.pick(rng, "kick_side" if f.detail == "sideways" else "kick", leg=leg)
            return Clause(verb, f"{high} {self._count(rng, n)}")
        if k in ("bend", "lean_back"):
            deep = f.value >= (60.0 if k == "bend" else 35.0)
            how = self.pick(rng, "deep" if deep else "slight") if (deep or f.value < 45.0 - 25.0 * (k == "lean_back")) \
                and rng.random() < 0.5 else ""
            return Clause(self.pick(rng, k), f"{how} {self._count(rng, n)}")
        return None

    def _base(self, rng: random.Random, f: Fact, seg: Segment, alone: bool, style: str | None) -> Clause | None:
        if f.kind in LOCOMOTION:
            path = next((g for g in seg.facts if g.kind == "path"), None)
            return self._locomotion(rng, f, path, style)
        if f.kind in POSTURES:
            if f.kind == "kneel":
                both = f.side in ("both", None)
                return Clause(self.pick(rng, "kneel_both" if both else "kneel", side=f.side))
            verb = self.pick(rng, f.kind)
            if f.detail == "down" and f.kind in ("crouch", "lie") and " " not in verb and self.half == "train":
                verb += " down"
            return Clause(verb)
        if alone:
            return Clause(self.pick(rng, "stand"))
        return None

    def clauses(self, facts: MotionFacts, rng: random.Random, style: str | None = None,
                max_clauses: int = 4) -> list[Clause]:
        """Clauses in time order; `after` says whether a clause follows the previous one or goes with it."""
        out: list[Clause] = []
        for i, seg in enumerate(facts.segments):
            events = [f for f in seg.facts[1:] if f.kind != "path"]
            base = self._base(rng, seg.base, seg, alone=not events and len(facts.segments) == 1, style=style)
            if base is None and seg.base.kind == "stand" and 0 < i < len(facts.segments) - 1 and not events:
                base = Clause(self.pick(rng, "stop"), self._duration(rng, (seg.end - seg.start) / facts.fps))
            moving = seg.base.kind in LOCOMOTION
            if base is not None:
                out.append(self._detail(rng, base, seg.base, seg, facts.fps))
            last_end = seg.start
            for f in events:
                c = self._event(rng, f)
                if c is None:
                    continue
                c = self._detail(rng, c, f, seg, facts.fps)
                if f.kind in ("raise", "arm_forward", "arm_side") and f.count == 1:
                    c = Clause(c.verb, c.tail, extra=self._duration(rng, (f.end - f.start) / facts.fps))
                if facts.num_frames >= 2 * facts.fps and rng.random() < 0.12:  # when in the clip it happens
                    mid = (f.start + f.end) / 2 / facts.num_frames
                    when = self.pick(rng, "when_start" if mid < 0.25 else "when_end" if mid > 0.75 else "when_mid")
                    c = Clause(c.verb, f"{c.tail} {when}", c.after, c.extra)
                concurrent = (moving and f.kind not in ("turn",)) or f.start < last_end
                out.append(Clause(c.verb, c.tail, not concurrent or not out, c.extra))
                last_end = max(last_end, f.end)
        if len(out) > max_clauses:  # keep the first, then a sorted sample: order stays, nothing invented
            keep = sorted(rng.sample(range(1, len(out)), max_clauses - 1))
            out = [out[0]] + [out[i] for i in keep]
        if style and out:
            manner = self.pick(rng, style, STYLES) if style in STYLES else ""
            tail = out[0].tail
            if re.search(r"\w+ly$", tail) and re.fullmatch(r"\w+ly", manner):  # 'slowly and sadly'
                manner = "and " + manner
            out[0] = Clause(out[0].verb, f"{tail} {manner}".strip(), out[0].after, out[0].extra)
        return out

    # --- clauses -> sentence --------------------------------------------------------------------

    def _join(self, rng: random.Random, clauses: list[Clause], form: str) -> str:
        text = clauses[0].render(form)
        for i, c in enumerate(clauses[1:], 1):
            last = i == len(clauses) - 1 and i >= 2 and rng.random() < 0.5
            key = "with" if not c.after else "last" if last else "seq"
            conn = self.pick(rng, key, ing="{ing}")
            text += conn.replace("{ing}", c.render("ing")) if "{ing}" in conn else conn + c.render(form)
        return text

    def sentence(self, clauses: list[Clause], rng: random.Random) -> str:
        subject = self.pick(rng, "subject")
        if not clauses:
            clauses = [Clause(self.pick(rng, "stand"))]
        frames = _options(self.half, "frame")
        if len(clauses) >= 2:
            special = "frame_seq" if clauses[1].after else "frame_with"
            frames = frames + _options(self.half, special) * 2
        frame = rng.choice(frames)
        rest = clauses[1:]
        values = {"S": subject, "B": self._join(rng, clauses, "s"), "Bing": self._join(rng, clauses, "ing"),
                  "Bpast": self._join(rng, clauses, "past"), "C1": clauses[0].render("s"),
                  "C1ing": clauses[0].render("ing")}
        if rest:
            first = [Clause(rest[0].verb, rest[0].tail, True, rest[0].extra)]
            values.update(R=self._join(rng, first + rest[1:], "s"), Ring=self._join(rng, first + rest[1:], "ing"))
        text = frame.format(**values)
        return re.sub(r"\s+", " ", re.sub(r"\s+,", ",", text)).strip(" ,")

    def caption(self, facts: MotionFacts, rng, style: str | None = None, max_clauses: int = 4) -> str:
        rng = _as_rng(rng)
        return self.sentence(self.clauses(facts, rng, style, max_clauses), rng)

    # --- vocabulary ---------------------------------------------------------------------------

    def vocabulary(self) -> frozenset[str]:
        """Every content word (not in EXEMPT) this half can write: all verb forms, plural body parts."""
        out: set[str] = set()
        i = HALVES.index(self.half)
        for table in (L, STYLES, STYLE_WALK):
            for key, pair in table.items():
                for entry in pair[i].split("|"):
                    for side in ("left", "right"):
                        text = re.sub(r"\{(arm|fist|leg|ing|where|[A-Z][a-zA-Z0-9]*)\}", " ", entry)
                        text = text.replace("{side}", side).replace("{n}", "three").strip()
                        forms = ("base", "s", "ing", "past") if key in _VERBS or table is STYLE_WALK else ("base",)
                        out.update(w for form in forms for w in words(_inflect(text, form) if text else ""))
                        if key in ("hand", "fist", "leg") and text:
                            out.add("feet" if text == "foot" else text + "s")
        return frozenset(w for w in out if w not in EXEMPT and not w.isdigit())

    def shapes(self) -> tuple[str, ...]:
        return tuple(s for key in ("frame", "frame_seq", "frame_with", "seq", "with", "last", "count", "count2")
                     for s in _options(self.half, key))


def _as_rng(rng) -> random.Random:
    if isinstance(rng, random.Random):
        return rng
    if hasattr(rng, "integers"):  # a numpy Generator
        return random.Random(int(rng.integers(2 ** 62)))
    return random.Random(rng)


@lru_cache(maxsize=None)
def _vocabulary(half: str) -> frozenset[str]:
    return Grammar(half).vocabulary()


def train_vocabulary() -> frozenset[str]:
    """Content words the train half writes (training captions use only these, EXEMPT words and numbers)."""
    return _vocabulary("train")


def heldout_vocabulary() -> frozenset[str]:
    """Content words only the held-out half writes: none of them may appear in training text."""
    return _vocabulary("heldout")


def caption_from_facts(facts: MotionFacts, rng, half: str = "train", style: str | None = None) -> str:
    """One caption of `facts` in the given half's wording."""
    return Grammar(half).caption(facts, rng, style)


# --- source captions, mirrored clips ----------------------------------------------------------------

_SIDE = re.compile(r"\b(counter-?clockwise|anti-?clockwise|clockwise|left|right)"
                   r"(?=(wards?|-hand(ed)?|-footed|hand(ed)?|most)?\b)", re.IGNORECASE)
_NOT_SIDE = re.compile(r"\b(right (away|now|there|here|angles?)|all right|right-angled?)\b", re.IGNORECASE)


def swap_sides(text: str) -> str:
    """Swap every side word (left/right, leftward(s), left-handed ..., clockwise/counterclockwise/anticlockwise),
    keeping case; 'right away', 'all right', 'right angle' are not sides and stay."""
    keep = {m.start() for m in _NOT_SIDE.finditer(text)} | {m.start() + 4 for m in _NOT_SIDE.finditer(text)
                                                            if m.group(0).lower().startswith("all ")}

    def repl(m: re.Match) -> str:
        word = m.group(1)
        if m.start() in keep:
            return word
        low = word.lower()
        new = {"left": "right", "right": "left", "clockwise": "counterclockwise"}.get(low, "clockwise")
        if low in ("counter-clockwise", "anti-clockwise"):
            new = "clockwise"
        return new.capitalize() if word[0].isupper() else new

    return _SIDE.sub(repl, text)


def _sanitize_map() -> dict[str, str]:
    """Held-out word -> the train word in the same position of its synonym list, where one word maps to one word."""
    out: dict[str, str] = {}
    for table in (L, STYLES, STYLE_WALK):
        for train, held in table.values():
            t_entries, h_entries = train.split("|"), held.split("|")
            for h in h_entries:
                if " " in h.strip() or not h.strip() or not t_entries[0].strip():
                    continue
                t = next((e for e in t_entries if e and " " not in e), None)
                if t is None:
                    continue
                for form in ("base", "s", "ing", "past"):
                    out.setdefault(_inflect(h, form), _inflect(t, form))
    out.update({"whilst": "while", "afterwards": "then", "subsequently": "then", "eventually": "finally",
                "simultaneously": "at the same time", "meanwhile": "at the same time", "approximately": "about",
                "revolution": "full circle", "whole": "full", "halt": "stop", "perform": "do", "performs": "does",
                "ahead": "forward", "laterally": "sideways", "performing": "doing", "performed": "did",
                "hunker": "squat", "hunkers": "squats", "hunkering": "squatting", "hunkered": "squatted"})
    out.pop("palm", None)  # 'palm pilot': drop such a caption rather than rewrite it
    vocab = heldout_vocabulary()
    return {k: v for k, v in out.items() if k in vocab}


def sanitize(text: str, half: str = "train") -> str | None:
    """Source text for the train half: held-out words replaced by their train synonyms; None if one has none."""
    if half != "train":
        return text
    held, mapping = heldout_vocabulary(), _SANITIZE

    def repl(m: re.Match) -> str:
        w = m.group(0).lower()
        return mapping.get(w, m.group(0)) if w in held else m.group(0)

    out = WORD.sub(repl, text.lower()) if any(w in held for w in words(text)) else text
    return None if any(w in held for w in words(out)) else out


_SANITIZE = _sanitize_map()


def captions_for_clip(facts: MotionFacts, source_captions, rng, n: int = 10, half: str = "train",
                      style: str | None = None) -> list[str]:
    """The clip's source captions (cleaned for the half) first, then kinematic captions of its facts
    (whole clip, main part, with the style label's manner) until n distinct captions (or the grammar runs dry)."""
    rng = _as_rng(rng)
    grammar = Grammar(half)
    out: list[str] = []
    for text in source_captions:
        clean = sanitize(str(text).strip().rstrip("."), half)
        if clean and clean not in out:
            out.append(clean)
    for attempt in range(6 * n):
        if len(out) >= n:
            break
        st = style if style and rng.random() < 0.6 else None
        sub = facts
        if len(facts.segments) > 1 and rng.random() < 0.25:  # the longest part alone
            seg = max(facts.segments, key=lambda s: s.end - s.start)
            sub = MotionFacts((seg,), facts.fps, facts.num_frames)
        text = grammar.caption(sub, rng, st, max_clauses=rng.choice((2, 3, 4)))
        if text not in out:
            out.append(text)
    return out


def make_facts(*segments: list[Fact], fps: float = 20.0) -> MotionFacts:
    """MotionFacts from lists of facts (each list a segment, its first fact the base): for prompts and tests."""
    segs, t = [], 0
    for facts in segments:
        facts = list(facts)
        start = min((f.start for f in facts), default=t)
        end = max((f.end for f in facts), default=t + 1)
        segs.append(Segment(start, max(end, start + 1), tuple(facts)))
        t = max(end, start + 1)
    return MotionFacts(tuple(segs), fps, t)
