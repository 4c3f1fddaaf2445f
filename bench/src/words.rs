//! Word lists and sentence templates per language. Topics are aligned across languages (index
//! `i` is the same thing in every language), so an item with several language variants says
//! the same thing in each.
//!
//! Placeholders in templates: `{T}` topic, `{D}` district, `{S}` street, `{W}` weekday,
//! `{H}` hour.

/// One topic of neighbourhood life.
pub struct Topic {
    /// Tag put on items about this topic.
    pub tag: &'static str,
    /// The topic in de, en, tr, ar, uk (same order as [`LANGS`]).
    pub names: [&'static str; 5],
    /// The easy-language (Leichte Sprache) name.
    pub easy: &'static str,
}

/// The languages content is written in, by BCP-47 tag.
pub const LANGS: [&str; 5] = ["de", "en", "tr", "ar", "uk"];

/// Share of items written first in each language of [`LANGS`], in percent.
pub const LANG_WEIGHTS: [u32; 5] = [55, 12, 13, 10, 10];

/// The tag of the German easy-language variant.
pub const EASY_TAG: &str = "de-x-easy";

macro_rules! topic {
    ($tag:literal, $easy:literal, [$de:literal, $en:literal, $tr:literal, $ar:literal, $uk:literal]) => {
        Topic {
            tag: $tag,
            names: [$de, $en, $tr, $ar, $uk],
            easy: $easy,
        }
    };
}

pub const TOPICS: &[Topic] = &[
    topic!(
        "cafe",
        "Café für Nachbarn",
        [
            "Nachbarschaftscafé",
            "neighbourhood café",
            "mahalle kahvesi",
            "مقهى الحي",
            "сусідське кафе"
        ]
    ),
    topic!(
        "kinder",
        "Spiel-Platz",
        [
            "Spielplatz",
            "playground",
            "çocuk parkı",
            "ملعب الأطفال",
            "дитячий майданчик"
        ]
    ),
    topic!(
        "essen",
        "Essen für wenig Geld",
        [
            "Tafel",
            "food bank",
            "gıda bankası",
            "بنك الطعام",
            "продуктовий банк"
        ]
    ),
    topic!(
        "beratung",
        "Beratung",
        [
            "Beratung",
            "counselling",
            "danışmanlık",
            "استشارة",
            "консультація"
        ]
    ),
    topic!(
        "sprache",
        "Sprach-Café",
        [
            "Sprachcafé",
            "language café",
            "dil kafesi",
            "مقهى اللغة",
            "мовне кафе"
        ]
    ),
    topic!(
        "sprache",
        "Deutsch lernen",
        [
            "Deutschkurs",
            "German course",
            "Almanca kursu",
            "دورة اللغة الألمانية",
            "курс німецької мови"
        ]
    ),
    topic!(
        "bildung",
        "Hilfe bei Haus-Aufgaben",
        [
            "Hausaufgabenhilfe",
            "homework help",
            "ödev yardımı",
            "مساعدة في الواجبات المدرسية",
            "допомога з домашніми завданнями"
        ]
    ),
    topic!(
        "fahrrad",
        "Fahrrad reparieren",
        [
            "Fahrradwerkstatt",
            "bike repair workshop",
            "bisiklet tamir atölyesi",
            "ورشة تصليح الدراجات",
            "велосипедна майстерня"
        ]
    ),
    topic!(
        "reparatur",
        "Dinge reparieren",
        [
            "Repair-Café",
            "repair café",
            "tamir kafesi",
            "مقهى التصليح",
            "ремонтне кафе"
        ]
    ),
    topic!(
        "garten",
        "Garten für alle",
        [
            "Gemeinschaftsgarten",
            "community garden",
            "topluluk bahçesi",
            "حديقة مجتمعية",
            "громадський сад"
        ]
    ),
    topic!(
        "flohmarkt",
        "Markt für alte Sachen",
        [
            "Flohmarkt",
            "flea market",
            "bit pazarı",
            "سوق المستعمل",
            "блошиний ринок"
        ]
    ),
    topic!(
        "fest",
        "Fest auf der Straße",
        [
            "Straßenfest",
            "street party",
            "sokak şenliği",
            "حفلة الشارع",
            "вуличне свято"
        ]
    ),
    topic!(
        "senioren",
        "Treffen für alte Menschen",
        [
            "Seniorentreff",
            "seniors' meeting",
            "yaşlılar buluşması",
            "لقاء كبار السن",
            "зустріч для літніх людей"
        ]
    ),
    topic!(
        "kinder",
        "Betreuung für Kinder",
        [
            "Kinderbetreuung",
            "childcare",
            "çocuk bakımı",
            "رعاية الأطفال",
            "догляд за дітьми"
        ]
    ),
    topic!(
        "wohnen",
        "Hilfe bei der Miete",
        [
            "Mieterberatung",
            "tenants' advice",
            "kiracı danışmanlığı",
            "استشارة المستأجرين",
            "консультація для орендарів"
        ]
    ),
    topic!(
        "beratung",
        "Hilfe bei Ämtern",
        [
            "Sozialberatung",
            "social advice",
            "sosyal danışmanlık",
            "استشارة اجتماعية",
            "соціальна консультація"
        ]
    ),
    topic!(
        "bildung",
        "Lern-Hilfe",
        [
            "Nachhilfe",
            "tutoring",
            "özel ders",
            "دروس خصوصية",
            "репетиторство"
        ]
    ),
    topic!(
        "kleidung",
        "Kleidung für wenig Geld",
        [
            "Kleiderkammer",
            "clothing bank",
            "giysi bankası",
            "بنك الملابس",
            "пункт видачі одягу"
        ]
    ),
    topic!(
        "buecher",
        "Bücher zum Tauschen",
        [
            "Bücherschrank",
            "public bookcase",
            "kitap dolabı",
            "خزانة الكتب العامة",
            "книжкова шафа"
        ]
    ),
    topic!(
        "buecher",
        "Bücherei",
        [
            "Stadtteilbibliothek",
            "district library",
            "semt kütüphanesi",
            "مكتبة الحي",
            "районна бібліотека"
        ]
    ),
    topic!(
        "umwelt",
        "Müll sammeln",
        [
            "Müllsammelaktion",
            "litter pick-up",
            "çöp toplama etkinliği",
            "حملة جمع القمامة",
            "прибирання сміття"
        ]
    ),
    topic!(
        "stadtmoebel",
        "Bank zum Sitzen",
        [
            "Parkbank",
            "park bench",
            "park bankı",
            "مقعد الحديقة",
            "лавка в парку"
        ]
    ),
    topic!(
        "sport",
        "Fußball-Platz",
        [
            "Bolzplatz",
            "football pitch",
            "futbol sahası",
            "ملعب كرة القدم",
            "футбольне поле"
        ]
    ),
    topic!(
        "hilfe",
        "Nachbarn helfen",
        [
            "Nachbarschaftshilfe",
            "neighbourly help",
            "komşu yardımı",
            "مساعدة الجيران",
            "сусідська допомога"
        ]
    ),
    topic!(
        "hilfe",
        "Hilfe beim Einkaufen",
        [
            "Einkaufshilfe",
            "help with shopping",
            "alışveriş yardımı",
            "المساعدة في التسوق",
            "допомога з покупками"
        ]
    ),
    topic!(
        "hilfe",
        "Hilfe beim Umzug",
        [
            "Umzugshilfe",
            "help with moving",
            "taşınma yardımı",
            "المساعدة في الانتقال",
            "допомога з переїздом"
        ]
    ),
    topic!(
        "essen",
        "Zusammen kochen",
        [
            "Kochabend",
            "cooking evening",
            "yemek akşamı",
            "أمسية الطبخ",
            "кулінарний вечір"
        ]
    ),
    topic!(
        "cafe",
        "Tee trinken",
        ["Teestube", "tea room", "çay ocağı", "غرفة الشاي", "чайна"]
    ),
    topic!(
        "frauen",
        "Treffen für Frauen",
        [
            "Frauentreff",
            "women's meeting",
            "kadın buluşması",
            "لقاء النساء",
            "жіноча зустріч"
        ]
    ),
    topic!(
        "jugend",
        "Haus für Jugendliche",
        [
            "Jugendzentrum",
            "youth centre",
            "gençlik merkezi",
            "مركز الشباب",
            "молодіжний центр"
        ]
    ),
    topic!(
        "gesundheit",
        "Fragen zur Gesundheit",
        [
            "Gesundheitsberatung",
            "health advice",
            "sağlık danışmanlığı",
            "استشارة صحية",
            "консультація зі здоров'я"
        ]
    ),
    topic!(
        "gesundheit",
        "Hebamme",
        [
            "Hebammensprechstunde",
            "midwife consultation",
            "ebe danışma saati",
            "استشارة القابلة",
            "консультація акушерки"
        ]
    ),
    topic!(
        "essen",
        "Essen abholen",
        [
            "Lebensmittelausgabe",
            "food distribution",
            "gıda dağıtımı",
            "توزيع المواد الغذائية",
            "роздача продуктів"
        ]
    ),
    topic!(
        "barrierefrei",
        "Ohne Stufen",
        [
            "Barrierefreiheit",
            "accessibility",
            "erişilebilirlik",
            "إمكانية الوصول",
            "доступність"
        ]
    ),
    topic!(
        "umwelt",
        "Bäume gießen",
        [
            "Baumpatenschaft",
            "tree sponsorship",
            "ağaç sponsorluğu",
            "رعاية الأشجار",
            "опіка над деревами"
        ]
    ),
    topic!(
        "werkzeug",
        "Werkzeug leihen",
        [
            "Werkzeugverleih",
            "tool library",
            "alet ödünç verme",
            "إعارة الأدوات",
            "прокат інструментів"
        ]
    ),
    topic!(
        "fahrrad",
        "Rad für Lasten",
        [
            "Lastenrad",
            "cargo bike",
            "yük bisikleti",
            "دراجة الشحن",
            "вантажний велосипед"
        ]
    ),
    topic!(
        "kultur",
        "Spazier-Gang im Veedel",
        [
            "Veedelsspaziergang",
            "neighbourhood walk",
            "mahalle yürüyüşü",
            "جولة في الحي",
            "прогулянка районом"
        ]
    ),
    topic!(
        "musik",
        "Zusammen singen",
        ["Chor", "choir", "koro", "جوقة", "хор"]
    ),
    topic!(
        "sport",
        "Sport zusammen",
        [
            "Sportgruppe",
            "sports group",
            "spor grubu",
            "مجموعة رياضية",
            "спортивна група"
        ]
    ),
];

/// Topics that suit each kind, as indexes into [`TOPICS`].
pub const PLACE_TOPICS: &[usize] = &[0, 1, 8, 9, 18, 19, 21, 22, 27, 29];
pub const OFFER_TOPICS: &[usize] = &[2, 3, 4, 5, 6, 13, 14, 15, 16, 17, 30, 31, 32, 35];
pub const EVENT_TOPICS: &[usize] = &[4, 8, 10, 11, 12, 20, 26, 28, 37, 38, 39];
pub const REQUEST_TOPICS: &[usize] = &[13, 16, 23, 24, 25, 35, 36];
pub const OBSERVATION_TOPICS: &[usize] = &[1, 20, 21, 33, 34];

/// Extra tags sprinkled on items.
pub const EXTRA_TAGS: &[&str] = &[
    "kostenlos",
    "familie",
    "ehrenamt",
    "mehrsprachig",
    "draußen",
    "abends",
    "wochenende",
    "inklusion",
    "nachhaltigkeit",
    "veedel",
    "kinderwagen",
    "rollstuhl",
];

/// Weekdays per language, Monday first.
pub const WEEKDAYS: [[&str; 7]; 5] = [
    [
        "Montag",
        "Dienstag",
        "Mittwoch",
        "Donnerstag",
        "Freitag",
        "Samstag",
        "Sonntag",
    ],
    [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ],
    [
        "Pazartesi",
        "Salı",
        "Çarşamba",
        "Perşembe",
        "Cuma",
        "Cumartesi",
        "Pazar",
    ],
    [
        "الاثنين",
        "الثلاثاء",
        "الأربعاء",
        "الخميس",
        "الجمعة",
        "السبت",
        "الأحد",
    ],
    [
        "понеділок",
        "вівторок",
        "середа",
        "четвер",
        "п'ятниця",
        "субота",
        "неділя",
    ],
];

/// Title templates per language.
pub const TITLES: [&[&str]; 5] = [
    &[
        "{T} in {D}",
        "{T} am {W}",
        "Neu in {D}: {T}",
        "{T} – jeden {W}",
        "Einladung: {T}",
        "{T} in der {S}",
        "Tipp aus {D}: {T}",
        "Heute: {T} in {D}",
        "{T} für die ganze Nachbarschaft",
    ],
    &[
        "{T} in {D}",
        "{T} on {W}s",
        "New in {D}: {T}",
        "Invitation: {T}",
        "{T} on {S}",
        "Tip from {D}: {T}",
        "{T} for the whole neighbourhood",
    ],
    &[
        "{D} semtinde {T}",
        "{W} günü {T}",
        "{D} semtinde yeni: {T}",
        "Davet: {T}",
        "{S} üzerinde {T}",
        "Komşular için {T}",
    ],
    &[
        "{T} في {D}",
        "{T} يوم {W}",
        "جديد في {D}: {T}",
        "دعوة: {T}",
        "{T} لجميع الجيران",
    ],
    &[
        "{T} у районі {D}",
        "{T}: {W}",
        "Нове в районі {D}: {T}",
        "Запрошення: {T}",
        "{T} для всіх сусідів",
    ],
];

/// Titles of help requests per language: (need, offer).
pub const REQUEST_TITLES: [(&str, &str); 5] = [
    ("Suche {T} in {D}", "Biete {T} in {D}"),
    ("Looking for {T} in {D}", "Offering {T} in {D}"),
    ("{D} semtinde {T} arıyorum", "{D} semtinde {T} sunuyorum"),
    ("أبحث عن {T} في {D}", "أعرض {T} في {D}"),
    ("Шукаю: {T}, район {D}", "Пропоную: {T}, район {D}"),
];

/// Body sentences per language.
pub const SENTENCES: [&[&str]; 5] = [
    &[
        "Wir treffen uns jeden {W} um {H} Uhr in der {S}.",
        "Alle Nachbarinnen und Nachbarn aus {D} sind herzlich willkommen.",
        "Die Teilnahme ist kostenlos, eine Anmeldung ist nicht nötig.",
        "Bitte bringt gute Laune und etwas zu essen mit.",
        "Es gibt Kaffee, Tee und selbstgebackenen Kuchen.",
        "Das Thema {T} liegt uns in der Nachbarschaft sehr am Herzen.",
        "Wer Fragen hat, kann sich gerne im Stadtteilbüro melden.",
        "Kinder können mitgebracht werden, es gibt eine Spielecke.",
        "Der Eingang ist barrierefrei, ein Aufzug ist vorhanden.",
        "Wir sprechen Deutsch, Türkisch, Arabisch und Ukrainisch.",
        "Seit letzter Woche gibt es in {D} ein neues Angebot: {T}.",
        "Die Straßenbahn hält direkt vor der Tür, Haltestelle {S}.",
        "Ehrenamtliche Helferinnen und Helfer werden noch gesucht.",
        "Bei Regen findet alles drinnen im Bürgerzentrum statt.",
        "Unser Veedel lebt vom Mitmachen – kommt vorbei!",
        "Die Beratung ist vertraulich und unabhängig.",
        "Bitte bringt eure Unterlagen und den Mietvertrag mit.",
        "Am {W} ist der Treffpunkt ausnahmsweise an der Ecke {S}.",
        "Im Sommer sitzen wir draußen unter den Kastanien.",
        "Fahrräder können im Hof abgestellt werden.",
        "Danke an alle, die beim letzten Mal geholfen haben!",
        "Für Rollstühle und Kinderwagen gibt es eine Rampe.",
    ],
    &[
        "We meet every {W} at {H} o'clock on {S}.",
        "All neighbours from {D} are warmly welcome.",
        "Taking part is free, no registration needed.",
        "There will be coffee, tea and home-made cake.",
        "{T} really matters to our neighbourhood.",
        "If you have questions, just drop by the local office.",
        "Children are welcome, there is a play corner.",
        "The entrance is step-free and there is a lift.",
        "We speak German, Turkish, Arabic and Ukrainian.",
        "Since last week there is a new offer in {D}: {T}.",
        "The tram stops right outside, stop {S}.",
        "We are still looking for volunteers.",
        "If it rains, everything takes place inside the community centre.",
        "Advice is confidential and independent.",
        "Please bring your documents and your tenancy agreement.",
        "Thanks to everyone who helped last time!",
    ],
    &[
        "Her {W} saat {H}:00'da {S} adresinde buluşuyoruz.",
        "{D} semtindeki tüm komşular davetlidir.",
        "Katılım ücretsizdir, kayıt gerekmez.",
        "Çay, kahve ve ev yapımı kek olacak.",
        "{T} mahallemiz için çok önemli.",
        "Sorusu olan herkes bize yazabilir.",
        "Çocuklar da gelebilir, oyun köşesi var.",
        "Giriş engelsizdir, asansör de var.",
        "Almanca, Türkçe, Arapça ve Ukraynaca konuşuyoruz.",
        "Geçen haftadan beri {D} semtinde yeni bir hizmet var: {T}.",
        "Tramvay kapının önünde duruyor.",
        "Hâlâ gönüllü arıyoruz.",
        "Komşularla tanışmak için harika bir fırsat.",
        "Yağmur yağarsa her şey içeride yapılır.",
        "Danışmanlık gizli ve ücretsizdir.",
    ],
    &[
        "نلتقي كل يوم {W} الساعة {H} في {S}.",
        "جميع الجيران من {D} مرحب بهم.",
        "المشاركة مجانية ولا حاجة للتسجيل.",
        "سيكون هناك شاي وقهوة وكعك منزلي.",
        "{T} مهم جداً لحيّنا.",
        "من لديه أسئلة يمكنه التواصل معنا.",
        "الأطفال مرحَّب بهم، توجد زاوية للعب.",
        "المدخل خالٍ من العوائق ويوجد مصعد.",
        "نتحدث الألمانية والتركية والعربية والأوكرانية.",
        "منذ الأسبوع الماضي توجد خدمة جديدة في {D}: {T}.",
        "يتوقف الترام أمام الباب مباشرة.",
        "ما زلنا نبحث عن متطوعين.",
        "فرصة رائعة للتعرف على الجيران.",
        "في حالة المطر يقام كل شيء في الداخل.",
        "الاستشارة سرية ومجانية.",
    ],
    &[
        "Зустрічаємося щотижня, {W}, о {H}:00, адреса: {S}.",
        "Запрошуємо всіх сусідів з району {D}.",
        "Участь безкоштовна, реєстрація не потрібна.",
        "Будуть чай, кава та домашні пироги.",
        "{T} дуже важливо для нашого району.",
        "Якщо у вас є питання, пишіть нам.",
        "Діти теж можуть прийти, є ігровий куточок.",
        "Вхід без сходинок, є ліфт.",
        "Ми говоримо німецькою, турецькою, арабською та українською.",
        "З минулого тижня в районі {D} є нова послуга: {T}.",
        "Трамвай зупиняється прямо біля дверей.",
        "Ми ще шукаємо волонтерів.",
        "Чудова нагода познайомитися з сусідами.",
        "У разі дощу все відбувається в приміщенні.",
        "Консультація конфіденційна і безкоштовна.",
    ],
];

/// Easy-language (Leichte Sprache) title templates; `{T}` is the topic's easy name.
pub const EASY_TITLES: &[&str] = &["{T} in {D}", "Neu: {T}", "Hilfe: {T}", "{T} am {W}"];

/// Easy-language sentences: short, one statement each.
pub const EASY_SENTENCES: &[&str] = &[
    "Hier gibt es: {T}.",
    "Das ist in {D}.",
    "Jeder darf kommen.",
    "Es kostet nichts.",
    "Sie brauchen keine Anmeldung.",
    "Wir treffen uns am {W}.",
    "Die Uhr-Zeit ist {H} Uhr.",
    "Sie haben Fragen? Dann rufen Sie uns an.",
    "Es gibt Hilfe in vielen Sprachen.",
    "Der Eingang hat keine Stufen.",
    "Sie können Ihre Kinder mitbringen.",
];

/// Comments per language.
pub const COMMENTS: [&[&str]; 5] = [
    &[
        "Danke für den Hinweis!",
        "Ich komme auch, bis {W}!",
        "Super Idee, bin dabei.",
        "Gibt es das auch am Wochenende?",
        "Ist der Eingang wirklich barrierefrei?",
        "Kann ich meine Kinder mitbringen?",
        "Wir waren letzte Woche da, sehr empfehlenswert.",
    ],
    &[
        "Thanks, see you there!",
        "Great idea, count me in.",
        "Is this also on weekends?",
        "Can I bring my kids?",
        "We went last week, highly recommended.",
    ],
    &[
        "Teşekkürler, ben de geliyorum!",
        "Harika fikir, ben de varım.",
        "Hafta sonu da var mı?",
        "Çocuklarımı getirebilir miyim?",
    ],
    &[
        "شكراً، سأحضر أيضاً!",
        "فكرة رائعة، أنا معكم.",
        "هل هذا متاح في عطلة نهاية الأسبوع أيضاً؟",
        "هل يمكنني إحضار أطفالي؟",
    ],
    &[
        "Дякую, я теж прийду!",
        "Чудова ідея, я з вами.",
        "Чи це також у вихідні?",
        "Чи можна прийти з дітьми?",
    ],
];

/// Organisations running offers (HSDS organization).
pub const ORGANIZATIONS: &[(&str, &str)] = &[
    ("Caritasverband für die Stadt Köln e.V.", "caritas-koeln.example"),
    ("Diakonie Köln und Region", "diakonie-koeln.example"),
    ("Kölner Tafel e.V.", "koelner-tafel.example"),
    ("AWO Kreisverband Köln", "awo-koeln.example"),
    ("DRK Kreisverband Köln", "drk-koeln.example"),
    ("Bürgerzentrum Ehrenfeld", "buergerzentrum-ehrenfeld.example"),
    ("Stadtbibliothek Köln", "stadtbibliothek-koeln.example"),
    ("Mieterverein Köln", "mieterverein-koeln.example"),
    ("Nachbarschaftshilfe Nippes e.V.", "nachbarschaft-nippes.example"),
    ("Repair Café Sülz", "repaircafe-suelz.example"),
    ("Türkisch-Deutscher Frauenverein Kalk", "tdfv-kalk.example"),
    ("Ukrainischer Hilfsverein Köln", "ukraine-hilfe-koeln.example"),
    ("Interkulturelles Zentrum Mülheim", "iz-muelheim.example"),
    ("Familienzentrum Deutz", "familienzentrum-deutz.example"),
];

/// Categories per kind.
pub const PLACE_CATEGORIES: &[&str] = &[
    "cafe",
    "playground",
    "library",
    "community_centre",
    "bench",
    "toilets",
    "park",
    "repair_cafe",
    "bookcase",
];
pub const OFFER_CATEGORIES: &[&str] = &[
    "food",
    "counselling",
    "language",
    "education",
    "health",
    "children",
    "housing",
    "clothing",
];
pub const REQUEST_CATEGORIES: &[&str] = &[
    "einkaufen",
    "umzug",
    "nachhilfe",
    "kinderbetreuung",
    "werkzeug",
    "begleitung",
    "übersetzung",
    "fahrrad",
];
pub const OBSERVATION_PRESETS: &[(&str, &str)] = &[
    ("barrier", "accessibility"),
    ("bench", "street_furniture"),
    ("litter", "cleanliness"),
    ("tree", "greenery"),
    ("streetlight", "safety"),
    ("playground_equipment", "children"),
];

/// Names (pseudonyms) used for content recorded on behalf of a neighbour.
pub const NEIGHBOUR_NAMES: &[&str] = &[
    "Frau Yılmaz",
    "Herr Schmitz",
    "Olena K.",
    "Ahmad",
    "Oma Lisbeth",
    "Familie Nowak",
    "Fatma H.",
];
