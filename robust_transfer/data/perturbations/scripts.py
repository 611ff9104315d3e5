"""Script detection and per-language character inventories.

Everything here is plain data (strings, tuples, dicts) or pure functions, so the
perturbations that use it pickle cleanly and deterministically.

Scripts recognised by :func:`script_of`:

``latin``     ASCII letters plus Latin-1/Latin Extended-A letters (accents, ß, œ ...)
``hiragana``  U+3041..U+3096
``katakana``  U+30A1..U+30FA (the prolonged sound mark ー is ``other``)
``hangul``    precomposed syllables U+AC00..U+D7A3
``han``       CJK unified ideographs (basic block and extension A)
``digit``     0-9 and full-width digits
``space``     any Unicode whitespace (including U+3000 ideographic space)
``punct``     ASCII and CJK punctuation, full-width forms
``other``     anything else (symbols, Cyrillic, Greek, ...)
"""

from __future__ import annotations

import unicodedata

LATIN_LANGS = frozenset({"en", "de", "es", "fr"})
#: languages written without spaces between words: word-level units are characters
NO_SPACE_LANGS = frozenset({"ja", "zh"})

_LOWER = "abcdefghijklmnopqrstuvwxyz"
#: lower-case alphabet of each Latin-script language, accents included
LATIN_ALPHABETS: dict[str, str] = {
    "en": _LOWER,
    "de": _LOWER + "äöüß",
    "es": _LOWER + "ñáéíóúü",
    "fr": _LOWER + "éèêëàâîïôûùüÿçœæ",
}
#: vowels (with accented forms) per Latin-script language, for vowel/consonant-aware substitution
LATIN_VOWELS: dict[str, str] = {
    "en": "aeiou",
    "de": "aeiouäöü",
    "es": "aeiouáéíóúü",
    "fr": "aeiouéèêëàâîïôûùüÿœæ",
}

HIRAGANA = "".join(chr(c) for c in range(0x3041, 0x3097))
KATAKANA = "".join(chr(c) for c in range(0x30A1, 0x30FB))
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3

#: ~500 frequent Chinese (simplified) characters, used for zh insertions/substitutions
COMMON_HANZI = "".join(
    dict.fromkeys(
        "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学"
        "对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面"
        "公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部"
        "正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关"
        "并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安"
        "表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共"
        "风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管"
        "夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品"
        "士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研"
        "像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济"
        "喜离虽坏兴某切团类乐注星病低米营适乎州河湖岛省县镇村球赛演唱歌曲影片剧团队员"
    )
)
#: ~300 frequent Japanese kanji (shinjitai forms), used for ja insertions/substitutions
COMMON_KANJI = "".join(
    dict.fromkeys(
        "日一国人年大十二本中長出三時行見月後前生五間上東四今金九入学高円子外八六下来気小七山話女北午"
        "百書先名川千水半男西電校語土木聞食車何南万毎白天母火右読友左休父雨会同事自社発者地業方新場員"
        "立開手力問代明動京目通言理体田主題意不作用度強公持野以思家世多正安院心界教文元重近考画海売知"
        "道集別物使品計死特私始朝運終台広住真有口少町料工建空急止送切転研足究楽起着店病質待試族銀早映"
        "親験英医仕去味写字答夜音注帰古歌買悪図週室歩風紙黒花春赤青館屋色走秋夏習駅洋旅服夕借曜飲肉"
        "貸堂鳥飯勉冬昼茶弟牛魚兄犬妹姉漢州島県市村郡選手試合優勝番組映画放送曲演奏監督作品"
    )
)

#: ~250 frequent hangul syllables, used for ko insertions/substitutions (a random syllable
#: from the whole 11,172-syllable block would mostly be one that never occurs in text)
COMMON_HANGUL = "".join(
    dict.fromkeys(
        "이의가는을에하고다지리기사서대도로인정한자일그나아수보시어제전주스위해원부상라국여우"
        "문성장대화관연중마것들적방동게면만신이러비미소요거실선구조모회간운개공경발과교내당무"
        "물산세양업오유음입통학합행현후각감강계고권근금기남년녀노단달데드래력령록류르를린말명"
        "민반배번법변병본분불사생석설속손송시식심안야약어언역영예완왕외용원월육은을음의이익인"
        "임작재저점제종지진질차참처천체초최추출치크타태토트파판편평포표품프피하한할함항해했향"
        "혁협형호활회획효히"
    )
)

_CJK_PUNCT = "。、，！？；：「」『』（）【】〈〉《》・…—～〜"
_ASCII_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def script_of(ch: str) -> str:
    """Return the script class of a single character (see module docstring)."""
    o = ord(ch)
    if o < 0x80:
        if ch.isalpha():
            return "latin"
        if ch.isdigit():
            return "digit"
        if ch.isspace():
            return "space"
        return "punct" if ch in _ASCII_PUNCT else "other"
    if ch.isspace():
        return "space"
    if 0x3041 <= o <= 0x3096:
        return "hiragana"
    if 0x30A1 <= o <= 0x30FA:
        return "katakana"
    if HANGUL_FIRST <= o <= HANGUL_LAST:
        return "hangul"
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF:
        return "han"
    if 0xFF10 <= o <= 0xFF19:
        return "digit"
    if 0xC0 <= o <= 0x24F and ch.isalpha():
        return "latin"
    if ch in _CJK_PUNCT or 0xFF01 <= o <= 0xFF0F or 0xFF1A <= o <= 0xFF20:
        return "punct"
    if unicodedata.category(ch).startswith("P"):
        return "punct"
    return "other"


def is_cjk_text(text: str, threshold: float = 0.3) -> bool:
    """True when at least ``threshold`` of the non-space characters are kana or han.

    Used by :mod:`.stats` to decide whether "words" are whitespace tokens or characters.
    """
    n = cjk = 0
    for ch in text:
        if ch.isspace():
            continue
        n += 1
        if script_of(ch) in ("han", "hiragana", "katakana"):
            cjk += 1
    return n > 0 and cjk / n >= threshold


def latin_pool(lang: str, ch: str) -> str:
    """Characters a Latin letter may become: the language's alphabet, in ``ch``'s case."""
    alphabet = LATIN_ALPHABETS.get(lang, _LOWER)
    if ch.isupper():
        # "ß".upper() is "SS": keep single characters only
        return "".join(c.upper() for c in alphabet if len(c.upper()) == 1)
    return alphabet


def same_script_pool(ch: str, lang: str) -> str:
    """Characters of the same script as ``ch``, suitable for insertion/substitution.

    Returns an empty string when ``ch`` should not be replaced (spaces, punctuation,
    symbols), so callers can skip it.
    """
    s = script_of(ch)
    if s == "latin":
        return latin_pool(lang, ch)
    if s == "hiragana":
        return HIRAGANA
    if s == "katakana":
        return KATAKANA
    if s == "han":
        return COMMON_KANJI if lang == "ja" else COMMON_HANZI
    if s == "hangul":
        return COMMON_HANGUL
    if s == "digit":
        return "0123456789" if ord(ch) < 0x80 else "０１２３４５６７８９"
    return ""


def random_hangul(rng) -> str:
    """A random frequent hangul syllable (from :data:`COMMON_HANGUL`)."""
    return rng.choice(COMMON_HANGUL)


def match_case(word: str, template: str) -> str:
    """Give ``word`` the capitalisation pattern of ``template`` (UPPER, Title or as-is)."""
    if not template or not word:
        return word
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[0].isupper():
        return word[0].upper() + word[1:]
    return word
