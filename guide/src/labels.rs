//! The guide's own words (headings, weekday names, notes) in the languages of the neighbourhoods
//! Quartier starts in: German, English, Turkish, Ukrainian and Arabic. Other languages get the
//! English labels (the items' texts still come in their language): a guide with a foreign
//! heading is better than none, and adding a language is one more table here.

/// The labels of one language.
pub(crate) struct Labels {
    pub guide_title: &'static str,
    pub offers: &'static str,
    pub events: &'static str,
    pub numbers: &'static str,
    pub open_this_week: &'static str,
    pub closed_this_week: &'static str,
    pub no_fixed_hours: &'static str,
    pub phone: &'static str,
    pub email: &'static str,
    pub languages: &'static str,
    pub scan_hint: &'static str,
    pub page: &'static str,
    /// Weekday abbreviations, Monday first.
    pub weekdays: [&'static str; 7],
    /// `{offers}` and `{events}` are replaced by the counts.
    left_out: &'static str,
    /// `{n}` is replaced by the count.
    more_dates: &'static str,
    /// `{title}` is replaced by the entry's title.
    qr_alt: &'static str,
}

impl Labels {
    /// The labels for a BCP-47 tag (by its primary language), English when there are none.
    pub fn for_language(tag: &str) -> &'static Labels {
        let primary = tag.split('-').next().unwrap_or(tag).to_ascii_lowercase();
        match primary.as_str() {
            "de" => &DE,
            "tr" => &TR,
            "uk" => &UK,
            "ar" => &AR,
            _ => &EN,
        }
    }

    pub fn left_out(&self, offers: usize, events: usize) -> String {
        self.left_out
            .replace("{offers}", &offers.to_string())
            .replace("{events}", &events.to_string())
    }

    pub fn more_dates(&self, n: usize) -> String {
        self.more_dates.replace("{n}", &n.to_string())
    }

    pub fn qr_alt(&self, title: &str) -> String {
        self.qr_alt.replace("{title}", title)
    }
}

static EN: Labels = Labels {
    guide_title: "Neighbourhood guide",
    offers: "Offers",
    events: "Coming events",
    numbers: "Important phone numbers",
    open_this_week: "Open this week",
    closed_this_week: "Closed this week",
    no_fixed_hours: "No fixed opening hours",
    phone: "Phone",
    email: "Email",
    languages: "Languages",
    scan_hint: "Scan the code beside an entry to open it in the app or on the web.",
    page: "Page",
    weekdays: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    left_out:
        "{offers} more offers and {events} more events did not fit into this guide. Find them in the app.",
    more_dates: "and {n} more dates",
    qr_alt: "QR code: link to “{title}”",
};

static DE: Labels = Labels {
    guide_title: "Nachbarschaftsführer",
    offers: "Angebote",
    events: "Termine",
    numbers: "Wichtige Telefonnummern",
    open_this_week: "Geöffnet diese Woche",
    closed_this_week: "Diese Woche geschlossen",
    no_fixed_hours: "Keine festen Öffnungszeiten",
    phone: "Telefon",
    email: "E-Mail",
    languages: "Sprachen",
    scan_hint: "Code scannen: Der Eintrag öffnet sich in der App oder im Browser.",
    page: "Seite",
    weekdays: ["Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"],
    left_out: "{offers} weitere Angebote und {events} weitere Termine passen nicht in dieses Heft. Sie finden sie in der App.",
    more_dates: "und {n} weitere Termine",
    qr_alt: "QR-Code: Link zu „{title}“",
};

static TR: Labels = Labels {
    guide_title: "Mahalle rehberi",
    offers: "Hizmetler",
    events: "Yaklaşan etkinlikler",
    numbers: "Önemli telefon numaraları",
    open_this_week: "Bu hafta açık",
    closed_this_week: "Bu hafta kapalı",
    no_fixed_hours: "Sabit çalışma saati yok",
    phone: "Telefon",
    email: "E-posta",
    languages: "Diller",
    scan_hint: "Kodu tarayın: kayıt uygulamada veya tarayıcıda açılır.",
    page: "Sayfa",
    weekdays: ["Pzt", "Sal", "Çar", "Per", "Cum", "Cmt", "Paz"],
    left_out:
        "{offers} hizmet ve {events} etkinlik daha bu rehbere sığmadı. Onları uygulamada bulabilirsiniz.",
    more_dates: "ve {n} tarih daha",
    qr_alt: "QR kodu: “{title}” bağlantısı",
};

static UK: Labels = Labels {
    guide_title: "Довідник району",
    offers: "Послуги",
    events: "Найближчі події",
    numbers: "Важливі номери телефонів",
    open_this_week: "Відчинено цього тижня",
    closed_this_week: "Цього тижня зачинено",
    no_fixed_hours: "Без постійного графіка",
    phone: "Телефон",
    email: "Ел. пошта",
    languages: "Мови",
    scan_hint: "Відскануйте код, щоб відкрити запис у застосунку або в браузері.",
    page: "Сторінка",
    weekdays: ["Пн", "Вт", "Ср", "Чт", "Пт", "Сб", "Нд"],
    left_out:
        "Ще {offers} послуг і {events} подій не вмістилися в цей довідник. Їх можна знайти в застосунку.",
    more_dates: "і ще {n} дат",
    qr_alt: "QR-код: посилання на «{title}»",
};

static AR: Labels = Labels {
    guide_title: "دليل الحي",
    offers: "الخدمات",
    events: "الفعاليات القادمة",
    numbers: "أرقام هواتف مهمة",
    open_this_week: "مفتوح هذا الأسبوع",
    closed_this_week: "مغلق هذا الأسبوع",
    no_fixed_hours: "لا توجد مواعيد ثابتة",
    phone: "هاتف",
    email: "بريد إلكتروني",
    languages: "اللغات",
    scan_hint: "امسح الرمز بجانب الإدخال لفتحه في التطبيق أو في المتصفح.",
    page: "صفحة",
    weekdays: [
        "الاثنين",
        "الثلاثاء",
        "الأربعاء",
        "الخميس",
        "الجمعة",
        "السبت",
        "الأحد",
    ],
    left_out: "لم يتسع هذا الدليل لـ {offers} خدمات أخرى و{events} فعاليات أخرى. تجدونها في التطبيق.",
    more_dates: "و{n} مواعيد أخرى",
    qr_alt: "رمز QR: رابط إلى «{title}»",
};
