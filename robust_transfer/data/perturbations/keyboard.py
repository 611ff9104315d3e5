"""``keyboard``: realistic typing errors, one model per writing system.

Unit of ``rate``: as for ``char_noise``, the expected fraction of non-whitespace characters
that get a typo; positions are drawn among the characters this model can mistype (when a
text has fewer of them than the budget, every one of them is mistyped). Every typo is a
one-character substitution, so the realised character edit rate is close to ``rate``.

Models (written here; nlpaug's ``KeyboardAug`` has no layouts for ja/ko/zh, re-tokenises
and re-joins text, and draws from the global ``random`` state, so it was not used):

* **en, de, es, fr** - the unshifted key grid of the national layout (en US QWERTY, de
  QWERTZ with üöäß, fr AZERTY with é è ç à on the number row, es Spanish QWERTY with ñ).
  A letter becomes a letter on an adjacent key (same row left/right, the two keys above,
  the two below, on the usual staggered geometry), in the same case. Accented letters
  typed with a dead key (es á, fr ê ...) become either the bare letter (dead key missed)
  or a neighbour of the bare letter.
* **ja** - Japanese is typed in romaji through an IME, so a kana typo is a mistyped vowel
  (another kana of the same gojūon row, e.g. か -> け) or a mistyped consonant: a
  consonant on a QWERTY key adjacent to the intended one, with the same vowel (same
  gojūon column, e.g. な (na) -> ま (ma), は (ha) -> が (ga)). Hiragana stays hiragana,
  katakana stays katakana. Kanji are replaced through the confusion table below
  (a wrong IME candidate).
* **ko** - hangul is typed on the 2-set (dubeolsik) keyboard jamo by jamo. A syllable is
  decomposed into initial/vowel/final jamo (Unicode arithmetic), one simple jamo is
  replaced by a jamo of the same kind (consonant or vowel) on an adjacent key, and the
  syllable is recomposed, e.g. 한 (ㅎㅏㄴ) -> 핟 / 항 / 헌 / 란 ...
* **zh** - pinyin IMEs produce wrong candidates that sound alike or look alike, so hanzi
  are replaced through a hand-written table of groups of homophones / near-homophones
  and visually close characters (的地得, 在再, 已己巳, 未末, 间问同, ...); characters
  outside the table are never changed.
"""

from __future__ import annotations

import random
import unicodedata

from robust_transfer.keys import LANGUAGES
from robust_transfer.registry.perturbations import KeyboardParams

from .base import Perturbation
from .char_noise import count_edits, nonspace_count, pick_positions
from .scripts import HANGUL_FIRST, HANGUL_LAST, LATIN_ALPHABETS

# -- Latin layouts: unshifted rows, top (number row) to bottom -------------------------------
LAYOUTS: dict[str, tuple[str, ...]] = {
    "en": ("1234567890-=", "qwertyuiop[]", "asdfghjkl;'", "zxcvbnm,./"),
    "de": ("1234567890ß", "qwertzuiopü+", "asdfghjklöä#", "yxcvbnm,.-"),
    "fr": ("&é\"'(-è_çà)=", "azertyuiop^$", "qsdfghjklmù*", "wxcvbn,;:!"),
    "es": ("1234567890'¡", "qwertyuiop`+", "asdfghjklñ´ç", "zxcvbnm,.-"),
}


def grid_neighbours(rows: tuple[str, ...]) -> dict[str, str]:
    """Adjacent keys on a staggered keyboard: row r col c touches (r, c+-1), (r-1, c),
    (r-1, c+1), (r+1, c-1), (r+1, c)."""
    out: dict[str, str] = {}
    for r, row in enumerate(rows):
        for c, key in enumerate(row):
            near = []
            for rr, cc in (
                (r, c - 1),
                (r, c + 1),
                (r - 1, c),
                (r - 1, c + 1),
                (r + 1, c - 1),
                (r + 1, c),
            ):
                if 0 <= rr < len(rows) and 0 <= cc < len(rows[rr]):
                    near.append(rows[rr][cc])
            out[key] = "".join(near)
    return out


def _latin_table(lang: str) -> dict[str, str]:
    alphabet = LATIN_ALPHABETS[lang]
    near = grid_neighbours(LAYOUTS[lang])
    table: dict[str, str] = {}
    for ch in alphabet:
        if ch in near:
            cands = "".join(c for c in near[ch] if c in alphabet and c != ch)
        else:  # dead-key letter: the bare letter or a neighbour of it
            base = unicodedata.normalize("NFD", ch)[0]
            cands = base + "".join(
                c for c in near.get(base, "") if c in alphabet and c != ch and c != base
            )
        if cands:
            table[ch] = cands
            up = ch.upper()
            if len(up) == 1 and up != ch:
                ups = "".join(c.upper() for c in cands if len(c.upper()) == 1)
                if ups:
                    table[up] = ups
    return table


# -- Japanese kana ---------------------------------------------------------------------------
_VOWELS = "aiueo"
_GOJUON = {  # romaji consonant -> hiragana for a i u e o ("" = none)
    "": "あいうえお",
    "k": "かきくけこ",
    "s": "さしすせそ",
    "t": "たちつてと",
    "n": "なにぬねの",
    "h": "はひふへほ",
    "m": "まみむめも",
    "y": "や\0ゆ\0よ",
    "r": "らりるれろ",
    "w": "わ\0\0\0を",
    "g": "がぎぐげご",
    "z": "ざじずぜぞ",
    "d": "だぢづでど",
    "b": "ばびぶべぼ",
    "p": "ぱぴぷぺぽ",
}
_QWERTY_NEAR = grid_neighbours(LAYOUTS["en"])


def _kana_table() -> dict[str, str]:
    table: dict[str, str] = {}
    pos: dict[str, tuple[str, int]] = {}
    for cons, row in _GOJUON.items():
        for v, ch in enumerate(row):
            if ch != "\0":
                pos[ch] = (cons, v)
    for ch, (cons, v) in pos.items():
        row = _GOJUON[cons]
        vowel_typos = [row[u] for u in range(5) if u != v and row[u] != "\0"]
        if cons:
            near_cons = [c for c in _QWERTY_NEAR.get(cons, "") if c in _GOJUON]
        else:  # a bare vowel: typing a consonant key next to the vowel key
            near_cons = [c for c in _QWERTY_NEAR.get(_VOWELS[v], "") if c in _GOJUON]
        cons_typos = [_GOJUON[c][v] for c in near_cons if _GOJUON[c][v] != "\0"]
        if not cons_typos:  # e.g. y/w columns: any row with this vowel
            cons_typos = [r[v] for c, r in _GOJUON.items() if c != cons and r[v] != "\0"][:4]
        # vowel and consonant typos equally likely: repeat the shorter list
        cands = vowel_typos * max(1, len(cons_typos)) + cons_typos * max(1, len(vowel_typos))
        table[ch] = "".join(cands)
    for ch, cands in list(table.items()):  # katakana = hiragana + 0x60
        table[chr(ord(ch) + 0x60)] = "".join(chr(ord(c) + 0x60) for c in cands)
    return table


# -- Korean 2-set keyboard -------------------------------------------------------------------
_KO_ROWS = ("ㅂㅈㄷㄱㅅㅛㅕㅑㅐㅔ", "ㅁㄴㅇㄹㅎㅗㅓㅏㅣ", "ㅋㅌㅊㅍㅠㅜㅡ")
_INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_MEDIALS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_FINALS = "\0ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"
_SHIFTED = {"ㄲ": "ㄱ", "ㄸ": "ㄷ", "ㅃ": "ㅂ", "ㅆ": "ㅅ", "ㅉ": "ㅈ", "ㅒ": "ㅐ", "ㅖ": "ㅔ"}


def _jamo_tables() -> tuple[dict[int, list[int]], dict[int, list[int]], dict[int, list[int]]]:
    near = grid_neighbours(_KO_ROWS)
    vowels = set(_MEDIALS)

    def typos(jamo: str, valid: str) -> list[int]:
        key = _SHIFTED.get(jamo, jamo)
        if key not in near:
            return []  # compound jamo (ㅘ, ㄳ ...): not a single key
        same_kind = [c for c in near[key] if (c in vowels) == (key in vowels)]
        return [valid.index(c) for c in same_kind if c in valid and c != jamo]

    ini = {i: t for i, j in enumerate(_INITIALS) if (t := typos(j, _INITIALS))}
    med = {i: t for i, j in enumerate(_MEDIALS) if (t := typos(j, _MEDIALS))}
    fin = {i: t for i, j in enumerate(_FINALS) if i and (t := typos(j, _FINALS))}
    return ini, med, fin


_KO_INI, _KO_MED, _KO_FIN = _jamo_tables()


def decompose_hangul(ch: str) -> tuple[int, int, int]:
    """(initial, medial, final) indices of a precomposed syllable (final 0 = none)."""
    idx = ord(ch) - HANGUL_FIRST
    return idx // 588, (idx % 588) // 28, idx % 28


def compose_hangul(ini: int, med: int, fin: int) -> str:
    return chr(HANGUL_FIRST + ini * 588 + med * 28 + fin)


def hangul_typo(ch: str, rng: random.Random) -> str:
    i, m, f = decompose_hangul(ch)
    slots = [s for s, ok in (("i", i in _KO_INI), ("m", m in _KO_MED), ("f", f in _KO_FIN)) if ok]
    if not slots:
        return ch
    s = rng.choice(slots)
    if s == "i":
        i = rng.choice(_KO_INI[i])
    elif s == "m":
        m = rng.choice(_KO_MED[m])
    else:
        f = rng.choice(_KO_FIN[f])
    return compose_hangul(i, m, f)


# -- hanzi / kanji confusion groups (homophones and look-alikes) ------------------------------
HANZI_GROUPS: tuple[str, ...] = (
    "的地得",
    "在再",
    "做作坐座",
    "那哪",
    "他她它",
    "以已",
    "已己巳",
    "是事市式室示",
    "未末本",
    "人入八",
    "大太犬",
    "天夫无",
    "日曰目旦",
    "土士",
    "千干于",
    "问间同向",
    "买卖",
    "候侯",
    "晴睛请情清",
    "历厉",
    "力办为",
    "王玉主",
    "白百自",
    "午牛",
    "几九儿",
    "处外",
    "和合河何",
    "会回汇",
    "时十实石",
    "中钟终忠",
    "国果过",
    "年念",
    "位围为",
    "上尚",
    "发法",
    "到道",
    "学雪",
    "后厚",
    "于与余鱼",
    "也野",
    "成城程乘",
    "生声升",
    "部步不布",
    "家加佳",
    "名明命鸣",
    "被背倍北",
    "区曲",
    "第帝弟",
    "最罪",
    "及级极即",
    "其期旗奇",
    "由油游有",
    "所锁",
    "任认",
    "内纳",
    "开凯",
    "组祖阻",
    "州洲周舟",
    "西希溪",
    "东冬动",
    "南难男",
    "美每没妹",
    "英应影营",
    "德得",
    "月越乐",
    "山三善",
    "水谁",
    "电店点",
    "曾层",
    "出初除",
    "球求秋",
    "队对堆",
    "赛塞",
    "场厂常长",
    "演眼言",
    "员元原园",
    "首手守",
    "歌哥各",
    "校效笑",
    "院远愿",
    "之只知",
    "这着",
    "个各",
    "了乐",
    "来莱",
    "岛导",
    "县现",
    "镇真",
    "村存",
    "世市",
    "代带",
    "两亮",
    "新心",
    "前钱",
    "分份",
    "子字自",
    "文问",
    "同通",
    "要药",
    "江将",
    "湖胡",
    "海还",
    "都读",
    "线先",
    "站战",
    "路陆",
    "机鸡",
    "唱场",
    "父夫",
    "公工功",
    "司丝",
    "教叫",
    "立力利",
    "建见件",
    "主住注",
    "方放",
    "并病",
    "从丛",
    "此次",
    "因音",
    "将奖",
    "但担",
    "连联",
    "两俩",
    "该改",
    "曾增",
    "被",
    "称城",
    "目自",
    "共供",
    "经京",
    "军君",
    "区",
    "位卫",
    "克刻",
    "华花",
    "拉啦",
    "巴把",
    "尔而儿",
    "斯思",
    "特",
    "纳那",
    "亚压",
    "利力",
    "罗落",
    "马吗妈",
    "里理李",
    "林临",
    "约越",
    "比笔",
    "尼你",
    "德",
    "意义",
    "加家",
    "普谱",
    "于",
    "书树",
    "所",
    "选先",
    "举句",
    "期气",
    "民名",
    "政正",
    "治知",
    "统同",
    "领令",
    "导道",
    "担单",
    "任",
    # Japanese kanji (shinjitai) look-alikes
    "島鳥",
    "県具",
    "駅訳",
    "郡群",
    "卒率",
    "後役",
    "間問聞開",
    "曲典",
    "郎朗",
    "氏民",
    "作昨",
    "田由甲申",
    "右石左",
    "東車",
    "力刀",
    "使便",
    "持特待",
    "住往注",
    "休体",
    "貝見",
    "活話",
    "地池他",
    "試式",
    "選遅",
    "関開",
    "聞間",
    "線綿",
    "優憂",
    "勝騰",
    "歳蔵",
    "際祭",
    "番審",
    "組祖",
    "戦単",
    "鉄失",
    "楽薬",
    "記紀",
    "員貝",
    "現見",
    "説税",
    "語悟",
    "続読",
)


def _hanzi_table() -> dict[str, str]:
    table: dict[str, set] = {}
    for group in HANZI_GROUPS:
        for ch in group:
            table.setdefault(ch, set()).update(c for c in group if c != ch)
    return {ch: "".join(sorted(others)) for ch, others in table.items() if others}


_LATIN = {lang: _latin_table(lang) for lang in LAYOUTS}
_KANA = _kana_table()
_HANZI = _hanzi_table()
# romanised names inside CJK text are typed on a US QWERTY keyboard
_JA = {**_LATIN["en"], **_HANZI, **_KANA}
_ZH = {**_LATIN["en"], **_HANZI}


def _is_hangul(ch: str) -> bool:
    return HANGUL_FIRST <= ord(ch) <= HANGUL_LAST


class Keyboard(Perturbation):
    name = "keyboard"
    Params = KeyboardParams

    def supports(self, lang: str) -> bool:
        return lang in LANGUAGES

    @staticmethod
    def table_for(lang: str) -> dict[str, str]:
        """Single-character typo candidates for ``lang`` (hangul is handled by jamo)."""
        if lang in _LATIN:
            return _LATIN[lang]
        if lang == "ja":
            return _JA
        if lang == "zh":
            return _ZH
        return _LATIN["en"]  # ko: Latin letters in Korean text (names) use QWERTY

    def perturb_text(self, text: str, lang: str, rng: random.Random) -> str:
        k = count_edits(rng, nonspace_count(text), self.params.rate)
        if k == 0:
            return text
        table = self.table_for(lang)
        if lang == "ko":

            def eligible(ch: str) -> bool:
                return _is_hangul(ch) or ch in table
        else:
            eligible = table.__contains__
        chars = list(text)
        for i in pick_positions(rng, text, k, eligible):
            ch = chars[i]
            chars[i] = hangul_typo(ch, rng) if _is_hangul(ch) else rng.choice(table[ch])
        return "".join(chars)
