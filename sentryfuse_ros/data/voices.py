"""Who speaks the digits: the seven recorded human voices and the espeak-ng synthetic voices,
and which split each one belongs to.

Human hold-out rule: every held-out voice's language is still spoken by another human in
training, and a held-out voice is a different person from every training voice (Allison Smith
records both English and Spanish, so both of her recordings stay in training).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sentryfuse_ros.data.config import SyntheticVoicePlan

LANGUAGES = ("en", "es", "fr", "it", "ru")

# The words espeak-ng is asked to say, digit order 0..9.
DIGIT_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "es": ("cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"),
    "fr": ("zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"),
    "it": ("zero", "uno", "due", "tre", "quattro", "cinque", "sei", "sette", "otto", "nove"),
    "ru": ("ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять"),
}


@dataclass(frozen=True)
class Voice:
    voice_id: str
    language: str
    split: str
    is_synthetic: bool
    # Human voices: the speaker and the Debian package and folder holding digits/0..9.
    speaker: str = ""
    package: str = ""
    digits_dir: str = ""
    extension: str = ""
    # Synthetic voices: espeak-ng voice, variant, pitch (0-99) and speed (words per minute).
    espeak_voice: str = ""
    espeak_variant: str = ""
    pitch: int = 0
    speed_wpm: int = 0

    def espeak_arguments(self) -> list[str]:
        return ["-v", f"{self.espeak_voice}+{self.espeak_variant}", "-p", str(self.pitch), "-s", str(self.speed_wpm)]


def _human(voice_id, language, split, speaker, package, folder, extension="wav") -> Voice:
    digits_dir = f"usr/share/asterisk/sounds/{folder}/digits"
    return Voice(voice_id, language, split, False, speaker, package, digits_dir, extension)


HUMAN_VOICES: tuple[Voice, ...] = (
    _human("en-allison", "en", "train", "Allison Smith", "asterisk-core-sounds-en-wav", "en_US_f_Allison"),
    _human("es-allison", "es", "train", "Allison Smith", "asterisk-core-sounds-es-wav", "es_MX_f_Allison"),
    _human("fr-june", "fr", "train", "June Wallack", "asterisk-core-sounds-fr-wav", "fr_CA_f_June"),
    _human("it-carlo", "it", "train", "Carlo Flora", "asterisk-core-sounds-it-wav", "it_IT_m_Carlo"),
    _human("ru-ivrvoice", "ru", "train", "Maxim Topal's IvrvoiceRU", "asterisk-core-sounds-ru-wav", "ru_RU_f_IvrvoiceRU"),
    # Validation: Colombian Spanish (gsm); Spanish stays in training through Allison.
    _human("es-co", "es", "val", "Avatar Ltda. (Colombia)", "asterisk-prompt-es-co", "es", "gsm"),
    # Test: French (gsm; June speaks French in training) and Italian (wav; Carlo speaks Italian).
    _human("fr-armelle", "fr", "test", "Armelle Desjardins", "asterisk-prompt-fr-armelle", "fr", "gsm"),
    _human("it-menardi", "it", "test", "Paola Dal Zot", "asterisk-prompt-it-menardi-wav", "it_IT_f_Menardi"),
)

# espeak-ng 1.51 base voices per language (mbrola voices excluded: not installed by default).
ESPEAK_BASE_VOICES: dict[str, tuple[str, ...]] = {
    "en": ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc"),
    "es": ("es", "es-419"),
    "fr": ("fr", "fr-be", "fr-ch"),
    "it": ("it",),
    "ru": ("ru", "ru-lv"),
}
# espeak-ng 1.51 voice variants (espeak-ng-data/voices/!v), a fixed list so the build never
# depends on directory listing order.
ESPEAK_VARIANTS: tuple[str, ...] = (
    "Alex Alicia Andrea Andy Annie AnxiousAndy Denis Diogo Gene Gene2 Henrique Hugo Jacky Lee Marco Mario "
    "Michael Mike Nguyen RicishayMax RicishayMax2 RicishayMax3 Storm Tweaky adam anika announcer antonio aunty "
    "belinda benjamin boris caleb croak david ed edward edward2 f1 f2 f3 f4 f5 grandma grandpa gustave iven iven2 "
    "iven3 iven4 john kaukovalta klatt klatt2 klatt3 klatt4 klatt5 klatt6 linda m1 m2 m3 m4 m5 m6 m7 m8 marcelo max "
    "michel miguel norbert pablo paul pedro quincy rob robert sandro shelby steph steph2 steph3 travis victor "
    "whisper whisperf zac"
).split()


def synthetic_voices(plan: SyntheticVoicePlan) -> tuple[Voice, ...]:
    """Deterministic espeak-ng voices per language; val/test use variants never used in training."""
    rng = np.random.default_rng(plan.seed)
    variants = list(rng.permutation(ESPEAK_VARIANTS))
    variants_by_split = {}
    for split in ("val", "test"):
        count = plan.held_out_variants
        variants_by_split[split], variants = variants[:count], variants[count:]
    variants_by_split["train"] = variants
    voices = []
    for language in LANGUAGES:
        for split in ("train", "val", "test"):
            for index in range(plan.voices_per_language(split)):
                base = ESPEAK_BASE_VOICES[language][rng.integers(len(ESPEAK_BASE_VOICES[language]))]
                variant = variants_by_split[split][rng.integers(len(variants_by_split[split]))]
                pitch = int(rng.integers(plan.pitch_range[0], plan.pitch_range[1] + 1))
                speed = int(rng.integers(plan.speed_range_wpm[0], plan.speed_range_wpm[1] + 1))
                voice_id = f"espeak-{split}-{language}-{index:02d}"
                voices.append(
                    Voice(voice_id, language, split, True, espeak_voice=base, espeak_variant=variant,
                          pitch=pitch, speed_wpm=speed)
                )
    return tuple(voices)
