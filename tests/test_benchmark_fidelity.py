"""Benchmark fidelity (issue 20): the published layouts (MVBench with data0613/ and a frame-folder task,
Video-MME Parquet with subtitles, TempCompass' four task files), the exact prompt strings per style,
lmms-eval's answer rules on published edge cases, rows that never stop a load, unscored reasons."""

import json
import sys

import numpy as np
import pytest
from PIL import Image

from fastvlm_video.cli import main
from fastvlm_video.data.dataset import load_sample_media
from fastvlm_video.data.subtitles import read_srt, subtitles_at
from fastvlm_video.demo.synthetic import moving_square_frames, write_video
from fastvlm_video.errors import RecordError
from fastvlm_video.infer import answer_rules as rules
from fastvlm_video.infer.benchmarks import is_benchmark, load_benchmark
from fastvlm_video.infer.choices import ChoiceSpec, extract_choice, judge, read_choice
from fastvlm_video.model.load import video_config_of

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

Q = "Which way does the square move?"


def _clip(path, direction="left", seed=0):
    write_video(path, moving_square_frames(direction, np.random.default_rng(seed), num_frames=12), fps=8, gop=8)


@pytest.fixture(scope="module")
def mvbench(tmp_path_factory):
    """MVBench as published: json/<task>.json, video/<source folder>/..., a clip only in data0613/, and
    episodic_reasoning's folder of frames (tvqa/frames_fps3_hq/<clip>/00001.jpg...)."""
    root = tmp_path_factory.mktemp("mvbench")
    video = root / "video"
    _clip(video / "clevrer/video_validation/video_1.mp4")
    _clip(video / "data0613/clevrer/video_validation/video_14727.mp4", "up")
    _clip(video / "data0613/star/Charades_v1_480/EDXBD.mp4", "up")
    frames = video / "tvqa/frames_fps3_hq/castle_s01e01_seg02_clip_00"
    frames.mkdir(parents=True)
    for i, frame in enumerate(moving_square_frames("right", np.random.default_rng(2), num_frames=6)):
        Image.fromarray(frame).save(frames / f"{i + 1:05d}.jpg")
    js = root / "json"
    js.mkdir()
    (js / "moving_direction.json").write_text(json.dumps([
        {"video": "video_1.mp4", "question": Q, "candidates": ["left", "up"], "answer": "left"},
        {"video": "video_14727.mp4", "question": Q, "candidates": ["left", "up"], "answer": "up"},
        {"video": "video_1.mp4", "question": Q, "candidates": ["left", "up"], "answer": "sideways"},  # not a candidate
        {"video": "video_1.mp4", "question": "How many?", "candidates": [3, 2], "answer": 2},  # numbers
    ]))  # fmt: skip
    (js / "action_sequence.json").write_text(json.dumps([
        {"video": "EDXBD.mp4", "question": "What did the person do?", "candidates": ["Ate.", "Sat."], "answer": "Sat.",
         "start": 0.25, "end": 1.25},
    ]))  # fmt: skip
    (js / "fine_grained_action.json").write_text(json.dumps([  # its clip was never downloaded: a media error
        {"video": "validation/punting/missing.mp4", "question": Q, "candidates": ["left", "up"], "answer": "left"},
    ]))  # fmt: skip
    (js / "episodic_reasoning.json").write_text(json.dumps([
        {"video": "castle_s01e01_seg02_clip_00", "question": "Where?", "candidates": ["a", "b", "c", "d", "e"], "answer": "e",
         "start": 0.0, "end": 1.5},
    ]))  # fmt: skip
    return root


def test_mvbench_finds_data0613_clips_and_frame_folders_and_keeps_every_row(mvbench):
    samples, specs = load_benchmark(mvbench / "json", mvbench / "video")
    refs = {s.id: s.media[0] for s in samples}
    video = mvbench / "video"
    assert refs["moving_direction/1"].path == str(video / "data0613/clevrer/video_validation/video_14727.mp4")
    assert refs["action_sequence/0"].path == str(video / "data0613/star/Charades_v1_480/EDXBD.mp4")
    assert (refs["action_sequence/0"].start, refs["action_sequence/0"].end) == (0.25, 1.25)  # a bounded task: full clip
    assert refs["episodic_reasoning/0"].path == str(video / "tvqa/frames_fps3_hq/castle_s01e01_seg02_clip_00")  # a folder
    assert specs["moving_direction/2"].answer is None and "not one of the candidates" in specs["moving_direction/2"].extra["problem"]
    assert specs["moving_direction/3"].options == ["3", "2"] and specs["moving_direction/3"].answer == 1
    assert specs["episodic_reasoning/0"].labels == list("ABCDE")


MVB = {"question": "What happened after the person took the food?",
       "candidates": ["Ate the medicine.", "Tidied up the blanket.", "Put down the cup/glass/bottle.", "Took the box."]}  # fmt: skip
MVB_OPTIONS = "(A) Ate the medicine.\n(B) Tidied up the blanket.\n(C) Put down the cup/glass/bottle.\n(D) Took the box."
MVB_SYSTEM = (
    "Carefully watch the video and pay attention to the cause and sequence of events, the detail and movement of objects, "
    "and the action and pose of persons. Based on your observations, select the best option that accurately addresses the question."
)
VMME = {"videoID": "fFjv93ACGo8", "question_id": "001-1", "task_type": "Counting Problem", "domain": "Knowledge", "duration": "short",
        "question": "When demonstrating the Germany modern Christmas tree is initially decorated with apples, candles and berries, "
                    "which kind of the decoration has the largest number?",
        "options": ["A. Apples.", "B. Candles.", "C. Berries.", "D. The three kinds are of the same number."], "answer": "C"}  # fmt: skip
VMME_Q = VMME["question"] + "\nA. Apples.\nB. Candles.\nC. Berries.\nD. The three kinds are of the same number."
PRE = "Select the best answer to the following multiple-choice question based on the video{}. Respond with only the letter (A, B, C, or D) of the correct option."


@pytest.mark.parametrize(
    ("bench", "style", "expected"),
    [
        ("mvbench", "lmms-eval", f"Question:{MVB['question']}\nOption:\n{MVB_OPTIONS}\nOnly give the best option.\n"),
        ("mvbench", "official", f"{MVB_SYSTEM}\nQuestion: {MVB['question']}\nOptions:\n{MVB_OPTIONS}\nOnly give the best option."),
        ("videomme", "lmms-eval", f"{PRE.format(' and the subtitles')}\n{VMME_Q}\n\nAnswer with the option's letter from the given choices directly."),
        ("videomme", "official", f"{PRE.format('')}\n{VMME_Q}\nThe best answer is:"),
        ("tempcompass", "lmms-eval", "What is the man doing?\nA. dunking\nB. dribbling\nPlease directly give the best option:"),
        ("tempcompass", "official", "What is the man doing?\nA. dunking\nB. dribbling\nPlease directly give the best option:"),
    ],
)  # fmt: skip
def test_prompt_strings_do_not_drift(tmp_path, bench, style, expected):
    record = {"mvbench": MVB | {"video": "x.mp4", "answer": "Took the box."}, "videomme": VMME,
              "tempcompass": {"video_id": "v", "dim": "action", "question": "What is the man doing?\nA. dunking\nB. dribbling",
                              "answer": "A. dunking"}}[bench]  # fmt: skip
    data = tmp_path / ("action_sequence.json" if bench == "mvbench" else "q.json")
    data.write_text(json.dumps([record]))
    samples, specs = load_benchmark(data, tmp_path, prompt_style=style)
    messages = samples[0].messages
    assert messages[-2].content == f"<image>\n{expected}"
    official_mvbench = bench == "mvbench" and style == "official"
    assert (messages[0].content if official_mvbench else None) == (MVB_SYSTEM if official_mvbench else None)
    assert specs[samples[0].id].answer_prefix == ("Best option:(" if official_mvbench else "")


def test_videomme_parquet_with_subtitles_at_the_sampled_frames(tmp_path, tiny_model_dir):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    root = tmp_path / "Video-MME"
    _clip(root / "data" / "fFjv93ACGo8.mp4")
    _clip(root / "data" / "nosubs.mp4", "up")
    (root / "subtitle").mkdir()
    (root / "subtitle" / "fFjv93ACGo8.srt").write_text(
        '1\n00:00:00,000 --> 00:00:00,400\n<font color="white" size=".72c">Hi guys,</font>\n\n'
        '2\n00:00:00,400 --> 00:00:01,000\n<font color="white" size=".72c">today: a tree</font>\n\n'
        "3\n00:00:05,000 --> 00:00:06,000\nnever shown\n"
    )  # fmt: skip
    rows = [VMME, VMME | {"videoID": "nosubs", "question_id": "002-1", "answer": "A"}]
    (root / "videomme").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), root / "videomme" / "test-00000-of-00001.parquet")
    data = root / "videomme" / "test-00000-of-00001.parquet"
    assert is_benchmark(data)
    samples, specs = load_benchmark(data, root / "data", subtitles=root / "subtitle", prompt_style="official")
    text = samples[0].messages[0].content
    assert text.startswith(f"<image>\nThis video's subtitles are listed below:\n<subtitles:{root / 'subtitle' / 'fFjv93ACGo8.srt'}>\n{PRE.format('')}")
    assert samples[1].messages[0].content.startswith("<image>\nThis video's subtitles are listed below:\nNo subtitles available\n")
    lmms, _ = load_benchmark(data, root / "data", subtitles=root / "subtitle")
    assert lmms[0].messages[0].content.startswith("<image>\nThis video's subtitles are listed below: \n<subtitles:")
    assert lmms[0].messages[0].content.endswith(f"{PRE.format(' and the subtitles')}\n{VMME_Q}\nThe best answer is:")
    # the slot is filled with the cues on screen at the frames the model sees
    video = video_config_of(tiny_model_dir, num_frames=3)
    loaded, messages = load_sample_media(samples[0].messages[:1], samples[0].media, video)
    times = loaded[0].timestamps
    cues = read_srt(root / "subtitle" / "fFjv93ACGo8.srt")
    assert [c.text for c in cues] == ["Hi guys,", "today: a tree", "never shown"]
    shown = subtitles_at(cues, times)
    assert shown and "never shown" not in shown
    assert messages[0].content.startswith("<image>\nThis video's subtitles are listed below:\n" + "\n".join(shown) + f"\n{PRE.format('')}")
    # end to end: read from Parquet, every question scored, the report shows the subtitles the model saw
    rows, metrics, _ = run_eval(tiny_model_dir, data, root / "data", tmp_path / "out", "--subtitles", str(root / "subtitle"))
    assert metrics["num_scored"] == 2 and metrics["num_unscored"] == 0 and metrics["settings"]["subtitles"] == str(root / "subtitle")
    first = next(r for r in rows if r["id"] == "001-1")
    expected = "\n".join(subtitles_at(cues, first["timestamps"][0]))
    assert first["question"].startswith(f"<image>\nThis video's subtitles are listed below: \n{expected}\n") and "<subtitles:" not in first["question"]


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    data = tmp_path / "test-00000-of-00001.parquet"
    data.write_bytes(b"PAR1\x00\x00binary")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert is_benchmark(data)  # never handed to the records loader ("not valid UTF-8")
    with pytest.raises(RecordError, match=r"needs pyarrow: pip install 'fastvlm-video\[benchmarks\]'"):
        load_benchmark(data, tmp_path)


@pytest.fixture(scope="module")
def tempcompass(tmp_path_factory):
    """TempCompass' official questions/ folder (all four task files) and videos/."""
    root = tmp_path_factory.mktemp("tempcompass")
    _clip(root / "videos" / "1034419625.mp4")
    q = root / "questions"
    q.mkdir()
    mc = {"1034419625": {"direction": [{"question": "Where does it move?\nA. left\nB. up\nC. right", "answer": "A. left"}]}}
    yes_no = {"1034419625": {"direction": [{"question": "Is it moving left?", "answer": "yes"},
                                           {"question": "Is it moving up?", "answer": "no"}]}}  # fmt: skip
    cm = {"1034419625": {"direction": [
        {"question": "Which caption matches the video better?\nCaption A: It moves left.\nCaption B: It moves up.",
         "answer": "Caption A: It moves left."},
        {"question": "Which description is a more suitable match for the video?\nOption 1: It moves up.\nOption 2: It moves left.",
         "answer": "Option 2: It moves left."}]}}  # fmt: skip
    cap = {"1034419625": {"direction": [{"question": "Describe it.\nInformation A: {'direction': 'left'}\n"
                                                     "Information B: {'direction': 'up'}\nGenerated Caption:", "answer": "A. left"}]}}  # fmt: skip
    for name, data in (("multi-choice", mc), ("yes_no", yes_no), ("caption_matching", cm), ("captioning", cap)):
        (q / f"{name}.json").write_text(json.dumps(data))
    return root


def test_tempcompass_questions_folder_reads_all_four_task_files(tempcompass):
    samples, specs = load_benchmark(tempcompass / "questions", tempcompass / "videos")
    types = {s.id: specs[s.id].groups["type"] for s in samples}
    assert sorted(set(types.values())) == ["caption_matching", "captioning", "multi-choice", "yes_no"] and len(samples) == 6
    yes_no = next(s for s in samples if types[s.id] == "yes_no")
    assert yes_no.messages[0].content == "<image>\nIs it moving left?\nPlease answer yes or no:"
    cm = [specs[s.id] for s in samples if types[s.id] == "caption_matching"]
    assert cm[0].labels == ["Caption A", "Caption B"] and cm[0].answer == 0 and cm[1].answer == 1
    cap = next(specs[s.id] for s in samples if types[s.id] == "captioning")
    assert cap.extra["mc_question"].startswith("Where does it move?") and cap.extra["mc_answer"] == "A. left"


def test_tempcompass_hugging_face_layout_folder_of_type_folders(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = {"multi-choice": {"video_id": "v", "dim": "speed", "question": "How fast?\nA. slow\nB. fast", "answer": "B. fast"},
            "yes_no": {"video_id": "v", "dim": "speed", "question": "Is it fast?", "answer": "yes"},
            "captioning": {"video_id": "v", "dim": "speed", "question": "Describe.\nGenerated Caption:", "answer": "B. fast",
                           "mc_question": "How fast?\nA. slow\nB. fast", "mc_answer": "B. fast"}}  # fmt: skip
    for name, row in rows.items():
        (tmp_path / name).mkdir()
        pq.write_table(pa.Table.from_pylist([row]), tmp_path / name / "test-00000-of-00001.parquet")
    samples, specs = load_benchmark(tmp_path, tmp_path)
    assert sorted(spec.groups["type"] for spec in specs.values()) == ["captioning", "multi-choice", "yes_no"]
    assert next(s for s in specs.values() if s.kind == "tempcompass/captioning").extra["mc_answer"] == "B. fast"


def test_a_judge_that_cannot_be_imported_is_a_clear_error():
    from fastvlm_video.errors import ConfigError
    from fastvlm_video.infer.choices import load_judge

    with pytest.raises(ConfigError, match="module:function"):
        load_judge("nocolon")
    with pytest.raises(ConfigError, match="cannot import it"):
        load_judge("no_such_module_here:judge")


def test_tempcompass_yes_no_and_caption_matching_published_rules():
    yes_no = ChoiceSpec(["yes", "no"], 0, lettered=False, kind="tempcompass/yes_no")
    assert [read_choice(t, yes_no) for t in ("Yes.", "yes, it is", "No", "Nope", "It is yes", "")] == [0, 0, 1, 1, None, None]
    question = "Which sentence better captures the essence of the video?\nSentence A: It moves left.\nSentence B: It moves up."
    cm = ChoiceSpec(["It moves left.", "It moves up."], 1, labels=["Sentence A", "Sentence B"], lettered=False,
                    kind="tempcompass/caption_matching", extra={"question": question})  # fmt: skip
    answers = ["Sentence B: It moves up.", "It moves up.", "(B) It moves up.", "Sentence B", "B", "B.", "Sentence A", "It goes up"]
    assert [read_choice(t, cm) for t in answers] == [1, 1, 1, 1, 1, 1, 0, None]


# Published edge cases (docs/evaluation.md): Video-MME 001-1, right answer C "Berries.".
EDGE = [  # text, project rule, lmms-eval MVBench mcq_acc, lmms-eval Video-MME extract_mcq_answer, TempCompass rule
    ("C", "C", "C", "C", "C"), ("C.", "C", "C", "C", "C"), ("C) Berries.", "C", "C", "C", "C"), ("C. Berries.", "C", "C", "C", "C"),
    ("(C)", "C", "C", "C", None), ("Berries.", "C", None, "B", None), ("c", "C", "C", None, None),
    ("Answer: C", "C", "C", "C", None), ("Best option:(C)", "C", "C", "C", None),
    ("A man puts berries on the tree.", "C", "A", "A", None), ("A or C", None, "A", "A", None),
    ("Both A and B are wrong, the answer is C", "C", "A", "C", None), ("E", None, "E", None, None),
    ("(E) none", None, "E", None, None), ("Candles and berries", None, None, "C", None),
]  # fmt: skip


@pytest.mark.parametrize(("text", "ours", "mvbench", "videomme", "tempcompass"), EDGE)
def test_answer_rules_on_published_edge_cases(text, ours, mvbench, videomme, tempcompass):
    options = ["Apples.", "Candles.", "Berries.", "The three kinds are of the same number."]
    letter = lambda i: None if i is None else "ABCDE"[i]  # noqa: E731
    assert letter(extract_choice(text, ChoiceSpec(options, 2))) == ours
    assert rules.mvbench_letter(text) == mvbench
    assert rules.mcq_letter(text, "ABCD") == videomme
    assert rules.tempcompass_choice_letter(text, "C. Berries.") == tempcompass
    for kind, expected in (("mvbench", mvbench), ("videomme", videomme), ("tempcompass", tempcompass)):
        spec = ChoiceSpec(options, 2, kind=kind, extra={"answer": "C. Berries."})
        row = judge({"id": "x", "prediction": text}, spec, rule="lmms-eval")
        assert row["choice"] == expected and row["exact_match"] == (expected == "C")


def test_lmms_eval_rule_details():
    assert rules.mvbench_letter("(B) Tidied up the blanket.") == "B"
    assert rules.mvbench_letter("b. something") == "B"  # ^[A-E]\. is case-insensitive
    assert rules.mvbench_letter("The answer is (d)") == "D"  # "the": no standalone a-e before it
    assert rules.mcq_letter("I think (A) is wrong; the answer is (B).") == "B"  # the last "(X)" of the top format
    assert rules.mcq_letter("") is None and rules.mcq_letter("xyz") is None
    assert rules.tempcompass_choice_letter("B) up", "B. up") == "B" and rules.tempcompass_choice_letter("up", "B. up") is None
    assert rules.captioning_rating("Reasoning: it says left.\nAnswer: A. left", "A. left")
    assert not rules.captioning_rating("Answer: A. left or B. up", "A. left")
    spec = ChoiceSpec(["x", "y"], 0, kind="mvbench")
    assert judge({"id": "e", "prediction": ""}, spec, rule="lmms-eval")["unscored"].startswith("an empty answer")
    assert "unscored" not in judge({"id": "e", "prediction": ""}, spec)  # our rule: empty is unparsed, wrong
    assert rules.judge_rating("Correct.") is True and rules.judge_rating("Incorrect") is False and rules.judge_rating("?") is None


def run_eval(model, data, media, out, *extra):
    argv = ["evaluate", "--model", str(model), "--data", str(data), "--media_folder", str(media), "--out", str(out),
            "--num_frames", "2", "--max_new_tokens", "4", "--batch_size", "4", "--device", "cpu", "--no_semantic", *extra]  # fmt: skip
    assert main(argv) == 0
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    return rows, json.loads((out / "metrics.json").read_text()), (out / "report.html").read_text()


def test_mvbench_layout_evaluates_with_every_unscored_question_explained(tiny_model_dir, mvbench, tmp_path, capsys):
    rows, metrics, html = run_eval(tiny_model_dir, mvbench / "json", mvbench / "video", tmp_path / "out", "--answer_rule", "lmms-eval")
    assert metrics["num_samples"] == 7 and metrics["settings"]["answer_rule"] == "lmms-eval"
    assert metrics["settings"]["prompt_style"] == "lmms-eval" and metrics["settings"]["frames_fps"] == 3.0  # TVQA frames
    episodic = next(r for r in rows if r["id"] == "episodic_reasoning/0")  # a folder of frames is a video
    assert not episodic.get("error") and episodic["timestamps"][0][-1] <= 1.5 and episodic["choice"] in (None, *"ABCDE")
    unscored = [r for r in rows if r.get("error") or r.get("unscored")]
    assert [r["id"] for r in unscored] == ["fine_grained_action/0"] and unscored[0]["reason"] == "file not found"
    assert metrics["num_unscored"] == 1 and metrics["unscored"] == {"media error: file not found": 1}
    tasks = metrics["by_group"]["task"]
    assert tasks["fine_grained_action"] == {"accuracy": None, "correct": 0, "num": 0, "unscored": 1,
                                            "unscored_reasons": {"media error: file not found": 1}}  # fmt: skip
    assert tasks["moving_direction"]["num"] == 4  # the row whose answer is no candidate is scored (wrong)
    assert [p["id"] for p in metrics["problems"]] == ["moving_direction/2"]
    assert not next(r for r in rows if r["id"] == "moving_direction/2")["exact_match"]
    assert metrics["task_mean_covers"] == {"tasks": 3, "of": 4, "missing": ["fine_grained_action"]}
    assert metrics["task_mean_accuracy"] == pytest.approx(sum(t["accuracy"] for t in tasks.values() if t["num"]) / 3)
    out = capsys.readouterr().out
    assert "covers 3 of 4 tasks (no scored question: fine_grained_action)" in out and "1 x media error: file not found" in out
    assert "not scored (why)" in html and "over 3 of 4 tasks" in html and "1 × media error: file not found" in html


def test_mvbench_official_style_starts_the_reply(tiny_model_dir, mvbench, tmp_path):
    rows, metrics, _ = run_eval(tiny_model_dir, mvbench / "json" / "moving_direction.json", mvbench / "video", tmp_path / "o",
                                "--prompt_style", "official")  # fmt: skip
    assert all(r["prediction"].startswith("(") for r in rows if not r.get("error"))  # "Best option:(" keeps its "("
    assert metrics["settings"]["prompt_style"] == "official"


def test_tempcompass_all_four_types_are_scored_with_a_pluggable_judge(tiny_model_dir, tempcompass, tmp_path, monkeypatch):
    rows, metrics, _ = run_eval(tiny_model_dir, tempcompass / "questions", tempcompass / "videos", tmp_path / "nojudge")
    assert metrics["num_scored"] == 5 and metrics["unscored"] == {
        "TempCompass captioning is scored by an LLM judge: pass --judge module:function": 1}
    assert set(metrics["by_group"]["type"]) == {"caption_matching", "captioning", "multi-choice", "yes_no"}
    (tmp_path / "fake_judge.py").write_text(
        "def judge(request):\n"
        "    if request['task'] == 'captioning':\n"
        "        return 'Reasoning: the caption says left.\\nAnswer: ' + request['mc_answer']\n"
        "    return 'Incorrect'\n"
    )  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    rows, metrics, _ = run_eval(tiny_model_dir, tempcompass / "questions", tempcompass / "videos", tmp_path / "judged", "--judge", "fake_judge:judge")
    caption = next(r for r in rows if r["kind"] == "tempcompass/captioning")
    assert caption["exact_match"] and caption["judge_output"].endswith("A. left")
    assert metrics["num_scored"] == 6 and metrics["num_unscored"] == 0 and metrics["settings"]["judge"] == "fake_judge:judge"


def test_score_choices_on_the_demos_own_test_set(tiny_model_dir, tmp_path):
    from fastvlm_video.demo.task import DIRECTIONS, make_motion_dataset

    paths = make_motion_dataset(tmp_path / "data", {"test": 8})  # records without "class", as the demo writes them
    assert all("class" not in r for r in json.loads(paths["test"].read_text()))
    rows, metrics, _ = run_eval(tiny_model_dir, paths["test"], tmp_path / "data", tmp_path / "out", "--task", "classification",
                                "--score", "choices")  # fmt: skip
    assert all(sorted(r["choice_scores"]) == sorted(DIRECTIONS) for r in rows)  # the distinct reference answers
    assert metrics["task"] == "classification" and set(metrics["by_group"]["class"]) == set(DIRECTIONS)
    assert metrics["accuracy"] == sum(r["exact_match"] for r in rows) / 8


def test_reference_candidates_fold_spellings():
    from fastvlm_video.data.records import Message, Sample
    from fastvlm_video.infer.benchmarks import reference_specs

    samples = [Sample(str(i), [Message("user", "q"), Message("assistant", a)]) for i, a in enumerate(["Left", "left", "left.", "left", "up"])]
    specs = reference_specs(samples)
    assert specs["0"].options == ["left", "up"] and specs["0"].answer == 0 and specs["4"].answer == 1 and specs["0"].answer == 0
    assert specs["0"].groups == {"class": "left"}
