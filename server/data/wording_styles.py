"""The paraphrase grammar's manner words for the Bandai Namco style labels: a train half and a held-out half.

`STYLES`: style label -> (train, held-out) '|'-separated manner phrases ('like an elderly person');
`STYLE_WALK`: walking verbs only that style may use ('shuffle'). They come from the dataset's own
style label, never from a measurement (server/data/wording.py holds every other list).
"""
from __future__ import annotations

STYLES: dict[str, tuple[str, str]] = {  # Bandai Namco style labels (labels.csv) -> manner phrases
    "active": (
        "energetically|with energy|vigorously|actively|in a lively way|with lots of energy|enthusiastically|"
        "eagerly|in an energetic way|full of energy|animatedly|with gusto|with enthusiasm|in a peppy way|"
        "with verve|with pep|vivaciously|with zeal|zealously|with drive|with great energy|in a vigorous way|"
        "with plenty of energy|in a high-energy way|bursting with energy|with boundless energy|with real energy|"
        "in a spirited manner|full of life|with liveliness|in a bouncy way|bouncily|with bounce|in an upbeat way|"
        "with oomph|perkily|with vitality|vibrantly|in an active way|in an active manner|keenly|"
        "with great enthusiasm|with a lot of pep|with high spirits and energy|with a burst of energy|"
        "in an energized way|with great verve|with lots of drive|with dynamism|with spunk|spunkily|"
        "with get-up-and-go|raring to go|in a sporty way|athletically|with sporty energy|in an invigorated way|"
        "like someone full of beans",
        "dynamically|spiritedly|with vigour|zestfully"),
    "angry": (
        "angrily|furiously|in an angry way|with anger|irritably|aggressively|with fury|in a bad temper|fiercely|"
        "in a furious way|heatedly|hotly|with rage|resentfully|in an irritated way|with annoyance|"
        "in a fit of anger|in a huff|belligerently|testily|in a rage|with clenched anger|sharply and angrily|"
        "in an aggressive way|in a hostile way|hostilely|with hostility|grumpily|in a grumpy way|sullenly|"
        "in a cross mood|with irritation|bitterly|savagely|in a temper",
        "crossly|irately|indignantly|wrathfully"),
    "childish": (
        "like a child|childishly|in a childish way|like a little kid|playfully|like a kid|in a childlike way|"
        "like a small child|like a little child|like a young child|with childlike joy|like a schoolchild|"
        "in a babyish way|with childish delight|like a little boy|like a little girl|in a kiddish way|"
        "like a preschooler|like a schoolkid|childlike|in a silly way|sillily|goofily|in a goofy way|"
        "like an excited child|in a playful way|with childish glee|like a kindergartner",
        "like a toddler|boyishly|impishly|like a youngster"),
    "chimpira": (
        "like a swaggering street thug|like a thug|like a street punk|with a swagger|like a tough guy|"
        "like a delinquent|in a thuggish way|like a bully|with a cocky swagger|like a hooligan|like a punk|"
        "like a street tough|in a menacing way|like a gang member|in a cocky way|cockily|like a yakuza underling|"
        "like a small-time crook|like a young tough|in a loutish way|loutishly|like a lout|"
        "like a thug on the street|with a tough-guy swagger|insolently|in an insolent way|brashly|with attitude|"
        "like a street bully|in a rowdy way",
        "like a hoodlum|like a ruffian|like a gangster"),
    "feminine": (
        "in a feminine manner|in a feminine way|femininely|gracefully|elegantly|with feminine grace|"
        "in a graceful way|delicately|softly|with grace|in a womanly way|with poise|smoothly|in a refined way|"
        "with delicate movements|demurely|with a light touch|prettily|in a genteel way|with refinement|"
        "with finesse|with elegance|in a soft, graceful way|with soft movements|with a feminine flair|"
        "in a girlish way|coyly|with grace and poise|sweetly|in an elegant way|with a graceful touch|"
        "with feminine elegance|in a poised way|lightly and gracefully|in a lady's manner|in a womanly manner|"
        "with feminine softness|in a soft manner|in a light, feminine way|in a ballet-like way|like a ballerina|"
        "with willowy grace|in a flowing way|flowingly|fluidly|with fluid grace|silkily|with a graceful sway",
        "daintily|in a ladylike fashion"),
    "giant": (
        "like a heavy giant|like a giant|heavily|like a huge heavy creature|like a large heavy giant|"
        "like a lumbering giant|with great weight|like a big giant|in a heavy way|like a massive giant|"
        "like a heavyweight|like an ogre|like a troll|with thudding steps|ploddingly|like a huge giant|"
        "like an enormous giant|like a big heavy creature|hulkingly|like a hulk|like a monster|"
        "with huge heavy movements|massively|like a titan|with enormous weight|like a big brute|weightily",
        "like a colossus|ponderously|lumberingly"),
    "happy": (
        "happily|cheerfully|joyfully|in a happy way|in a cheerful mood|with joy|in high spirits|gladly|"
        "delightedly|in a joyful way|in a good mood|jovially|buoyantly|brightly|contentedly|cheerily|exuberantly|"
        "jauntily|blissfully|ecstatically|elatedly|with a spring in the step|joyously|gaily|in a bright mood|"
        "with a smile|smilingly|happily and cheerfully|in a carefree mood|with delight|in a sunny mood|"
        "lightheartedly|with happiness|with a happy air|light-heartedly|in a chipper way|chirpily",
        "merrily|gleefully|jubilantly|blithely"),
    "masculine": (
        "in a masculine manner|in a masculine way|in a manly way|manfully|in a manly manner|in a masculine style|"
        "like a tough man|like a strong man|in a strong masculine way|in a burly way|in a brawny way|"
        "with masculine confidence|in a sturdy way|with masculine energy|in a tough way|"
        "with broad, firm movements|firmly|in a firm, manly way|with strength|powerfully|forcefully|"
        "in a bold, masculine way|boldly|with a masculine bearing|stoutly|with a strong posture|in a virile way|"
        "assertively|squarely|solidly|with a firm manner|in a hefty way|like a confident man|in a tough-guy way|"
        "gruffly|like a strongman|with a muscular bearing|muscularly|in a beefy way|like a bodybuilder|"
        "with brawn|in a stocky way|with manly force|in a manful way|with a broad-shouldered bearing|sturdily|"
        "robustly|in a robust way",
        "in a macho fashion|ruggedly"),
    "musical": (
        "theatrically|like in a musical|dramatically|rhythmically|with theatrical flair|in a theatrical way|"
        "with showmanship|like a musical theatre actor|with a flourish|with dramatic flair|like a musical actor|"
        "in a dramatic way|in a performative way|like a broadway performer|like in a show|"
        "with a theatrical touch|in a musical style|like a showman|with musical flair|like a dancer in a show|"
        "like a song-and-dance performer|with a theatrical air|in the style of a musical|like a musical star|"
        "operatically|with showbiz flair|like a performer in a show",
        "melodramatically|like a stage entertainer|showily|flamboyantly"),
    "normal": (
        "|normally|in an ordinary way|in a normal manner|naturally|in a natural way|in a regular way|"
        "in a standard way|in an everyday way|casually|as usual|in the usual way|without any particular style|"
        "neutrally|ordinarily|in a typical way|typically|in a neutral way|unremarkably|in a regular manner|"
        "in a standard manner|in a natural manner|in an ordinary manner|in a neutral style|"
        "with no particular style|in a default way|in an unremarkable way|as anyone would|in an average way|"
        "matter-of-factly|in a straightforward way|simply|without any flourish|in a normal way|"
        "in a customary way|customarily|routinely|in a routine way|in a relaxed, ordinary way|"
        "without any special manner|in an unstylized way|without exaggeration|without emotion|emotionlessly|"
        "in a conventional way|conventionally",
        "|plainly"),
    "not-confident": (
        "timidly|without confidence|shyly|nervously|hesitantly|unconfidently|insecurely|uncertainly|"
        "in an unsure way|self-consciously|with hesitation|awkwardly|anxiously|in a shy way|in a timid way|"
        "with little confidence|warily|tentatively|cautiously|gingerly|apprehensively|uneasily|with self-doubt|"
        "doubtfully|in a hesitant way|haltingly|falteringly|in a nervous way|with nervousness|fearfully|"
        "in a fearful way|unsurely|with uncertainty|with a lack of confidence",
        "meekly|diffidently|sheepishly|bashfully"),
    "old": (
        "like an old person|like an elderly person|like a senior|in an elderly way|like an old man|"
        "like an older person|like an elderly man|like an aging person|in an old way|like an old woman|"
        "like a grandparent|like a senior citizen|like a grandfather|like an old-timer|"
        "like someone of advanced age|in the manner of an old person|like a senior adult|like an elderly woman|"
        "like an old lady|like an older adult|like a grandmother|like an elder|stiffly|like someone elderly|"
        "like an old gentleman|with the stiffness of age|like an aging man|like an aging woman|like a retiree|"
        "in a stiff, elderly way|like a person in old age|with an old person's caution|slowly and stiffly|"
        "like someone in their eighties|like a granny|like a grandpa|like a senior person|"
        "like a person of great age|like an octogenarian|like a nonagenarian|like a very old person|"
        "like an elderly gentleman|like an elderly lady|with the slowness of age|like someone advanced in years|"
        "like an old grandmother|in the manner of a senior citizen",
        "like a pensioner|like an aged individual|frailly"),
    "proud": (
        "proudly|with pride|confidently|in a proud manner|arrogantly|with confidence|in a self-assured way|"
        "boastfully|with great pride|smugly|self-importantly|with a proud bearing|grandly|triumphantly|"
        "imperiously|majestically|regally|with an air of superiority|nobly|with a puffed-up chest|"
        "with the chin held high|self-confidently|with self-satisfaction|conceitedly|vainly|in a lordly way|"
        "superiorly|in a stately way|with great self-assurance|like a champion|victoriously",
        "haughtily|loftily|with dignity|pompously"),
    "sad": (
        "sadly|gloomily|in a sad way|unhappily|miserably|with sadness|in a gloomy way|in a depressed way|"
        "despondently|in a melancholy way|dolefully|in a downcast way|with a heavy heart|in low spirits|"
        "heavy-heartedly|wistfully|bleakly|downheartedly|with a sad air|tearfully|woefully|in a miserable way|"
        "with grief|grievingly|in a sad mood|in a gloomy mood|heavily with sadness|as if grieving|"
        "as if heartbroken|brokenheartedly|disconsolately|with a sense of loss|in a dispirited way|dispiritedly",
        "sorrowfully|mournfully|dejectedly|glumly|forlornly"),
    "tired": (
        "tiredly|wearily|in a tired way|sleepily|in a weary way|lethargically|with fatigue|in a sleepy way|"
        "like someone tired|with tiredness|groggily|feebly|in a lethargic way|dozily|half-asleep|"
        "like someone who needs sleep|like a sleepy person|as if sleepy|wearily and slowly|with tired movements|"
        "in a worn way|fatiguedly|as if worn down|like someone after a long day|with weary movements|"
        "without energy|languorously|in a dragging way",
        "drowsily|listlessly"),
    "exhausted": (
        "as if exhausted|in an exhausted way|like someone worn out|with exhaustion|as if worn out|"
        "in a worn-out way|like an exhausted person|with no energy left|like someone out of breath|"
        "in a fatigued way|as if completely tired out|with utter exhaustion|"
        "like someone at the end of their strength|as if on the verge of collapse|with the last of their energy|"
        "as though exhausted|as though worn out|like someone running on empty|like someone who is very tired|"
        "limply|with great effort|laboriously|effortfully|with dragging movements|as if out of energy|"
        "totally worn out|dead tired|with what little energy is left|weakly|with visible fatigue|"
        "as if on their last legs|barely able to keep going|as if every movement is an effort|as if weighed down|"
        "with slumped exhaustion|as if ready to drop|bone-tired|with heavy arms and legs|"
        "as if gasping for breath|as though after a marathon|as if completely knackered|"
        "as if at the point of collapse|as if all strength is gone|with the last of their strength|"
        "as if running out of steam|out of steam",
        "as if drained|like somebody spent|as if depleted"),
    "youthful": (
        "youthfully|in a youthful way|with youthful energy|like a young person|with the energy of youth|"
        "in a young and lively way|like a young adult|like a youth|in a fresh and lively way|with a young spirit|"
        "with youthful bounce|with the freshness of youth|with a lively young air|in a youthful manner|spryly|"
        "nimbly|with young energy|in a fresh, youthful way|in a perky way|with youthful vitality|in a spry way|"
        "with a young person's energy|like a student|like a college student|with springy movements|springily|"
        "like someone in their twenties|with a carefree air|in a carefree way|with youthful ease|"
        "with the ease of youth|breezily|with juvenile energy|with youthful exuberance|like a high schooler|"
        "like a young athlete|with the agility of youth|agilely|with agility|in a lively, young way|"
        "with a youthful bounce|like a twenty-year-old|with youthful freshness|in a vibrant, youthful way",
        "in a sprightly fashion|like a teenager"),
}
STYLES["masculinity"], STYLES["elderly"] = STYLES["masculine"], STYLES["old"]
STYLE_WALK: dict[str, tuple[str, str]] = {  # walking verbs that only the matching style may use
    "tired": ("trudge|plod|drag themselves along|shamble|drag their feet", "slog"),
    "exhausted": ("trudge|plod|shamble|drag themselves along|drag their feet|stagger along wearily|labor along",
                  "slog"),
    "old": ("shuffle|totter|dodder|potter along|inch along|creep along", "hobble"),
    "elderly": ("shuffle|totter|dodder|potter along|inch along|creep along", "hobble"),
    "proud": ("strut|stalk", "parade"), "chimpira": ("swagger|strut|slouch", "prowl"),
    "angry": ("stomp|storm|stalk", "stamp"),
    "giant": ("lumber|plod|thud", "clomp"), "feminine": ("sashay|glide|mince along", "float"),
    "sad": ("mope|shuffle", "droop"), "not-confident": ("creep|edge|shuffle", ""), "childish": ("toddle", "patter"),
    "musical": ("glide|prance", ""), "active": ("power along|bustle along", ""),
    "youthful": ("breeze along|zip along", ""), "masculine": ("tramp", ""),
}
