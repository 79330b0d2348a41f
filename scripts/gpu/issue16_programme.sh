#!/usr/bin/env bash
# Issue 16's FER-2013 programme on one GPU, in phases that each fit one device call; every run
# of a phase trains at once (under CUDA MPS where the machine allows it).
#
#   FER_TRAIN=path/to/release/fer-train DATA=/folder/holding/fer2013 RUNS=/tmp/runs OUT=dir \
#     PHASE=teachers|kd|extra|teachers3|kd3|extra3|teachers5|kd5|extra5|long|bf16|vgg|aug|fm|cached|cachespeed|small|res [EPOCHS=60] [EXTRA_ARCHS=...] [SHIP="run-prefix..."] [TEACHER_EPOCHS=80] [SEEDS="1 2 3"] [LIMIT=560] [KDS="kd dkd8 dkd8_ls"] [STUDENT=l|b0] \
#     bash scripts/gpu/issue16_programme.sh
#
# Before a device call, the same command on the CPU with FER_TRAIN=scripts/gpu/check_only.sh
# REAL_FER_TRAIN=target/release/fer-train (and DATA holding an empty fer2013/) checks every run
# it would launch with `fer-train check` and writes RUNS/<run>.resolved.toml; nothing trains
# (train/tests/device_scripts.rs does this for round 22's command).
#
# teachers: ResNet-50 and ResNet-18 teachers (seed 0, TEACHER_EPOCHS), MobileNetV3-Large exp3
#           over SEEDS, and single-seed ablations of the recipe (no weight EMA; CutMix).
# kd:       MobileNetV3-Large exp5 (Hinton KD towards the mean of both teachers + RKD distance
#           against ResNet-50) over SEEDS, and exp5 with the ResNet-50 teacher alone (seed 1).
# extra:    MobileNetV3-Small and EfficientNet-B0, exp3 and exp5-ensemble over SEEDS.
# Round 5 (a three-teacher ensemble):
# teachers3: ResNet-18 teachers of seeds 0, 1, 2 (TEACHER_EPOCHS), MobileNetV3-Large exp3 at
#            100 epochs (seed 1), and the ensemble's PublicTest accuracy (scripts/gpu/ensemble_eval.py,
#            which also re-scores each teacher independently of fer-train) in OUT/ensemble.md.
# kd3:       MobileNetV3-Large, single-stage Hinton KD (T = 4) towards the mean of the three
#            teachers, 0.5 CE + 0.5 KD over SEEDS, and 0.1 CE + 0.9 KD (seed 1).
# extra3:    MobileNetV3-Small exp3 and kd3 over SEEDS; EfficientNet-B0 exp3 and kd3 at lr 0.05
#            with gradient clipping (seed 1).
# Round 6 (a five-teacher ensemble, KD weighted towards it):
# teachers5: ResNet-18 teachers of seeds 0-4 (TEACHER_EPOCHS); the PublicTest accuracy of the
#            ensembles of the first three and of all five in OUT/ensemble.md.
# kd5:       MobileNetV3-Large, 0.1 CE + 0.9 KD (T = 4) towards the mean of the five teachers,
#            over SEEDS.
# extra5:    kd5's runs carried on (resumed), EfficientNet-B0 exp3 and kd5 at lr 0.05 with gradient
#            clipping (seed 1).
# Round 7 (the schedule, at a fair comparison):
# long:      ResNet-18 teachers of seeds 0-2 (TEACHER_EPOCHS) and, beside them, MobileNetV3-Large
#            exp3 over SEEDS; once the teachers are done, MobileNetV3-Large 0.1 CE + 0.9 KD (T = 4)
#            towards the mean of the three, over SEEDS; both at EPOCHS. Call it again (same warm
#            machine) to resume what LIMIT stopped; the teachers' ensemble is scored in OUT/ensemble.md.
# bf16:      MobileNetV3-Large exp3 in fp32 and in bf16 over SEEDS (issue 15: bf16 only if
#            accuracy holds), EfficientNet-B0 exp3 at lr 0.05 with clipping over SEEDS, and a
#            resume check: a MobileNetV3-Small run killed after its first epochs, then resumed.
# Round 8 (a teacher of another family):
# vgg:       vgg_fer teachers (a VGG for 48-pixel faces, at 48 px) of seeds 0-2 (TEACHER_EPOCHS)
#            and, beside them, MobileNetV3-Large exp3 over SEEDS; once the teachers are done,
#            their ensemble's PublicTest accuracy (OUT/ensemble.md), then MobileNetV3-Large
#            0.1 CE + 0.9 KD (T = 4) towards the mean of the three over SEEDS; students at EPOCHS.
#            Call it again (same warm machine) to resume what LIMIT stopped.
# Round 9 (stronger augmentation, KD with mixup):
# aug:       ResNet-18 teachers of seeds 0-2 with the round-1 augmentation and with a stronger one
#            (crop area 0.5-1, rotation ±15°, erasing 0.5), TEACHER_EPOCHS; the PublicTest and
#            validation-share accuracy of each set of three and of all six in OUT/ensemble.md (the
#            validation share chooses the teachers of fm).
# fm:        MobileNetV3-Large, 0.1 CE + 0.9 KD (T = 4) towards the mean of TEACHERS (run names
#            under RUNS) on mixup batches (augment.mixup_alpha = MIXUP, default 1.0: the teachers
#            see the same mixed images, "function matching"), and without mixup unless NO_PLAIN,
#            over SEEDS at EPOCHS.
# cached:    the six teachers of aug (trained if absent; with TEACHERS6=0 only its three of the
#            round-1 augmentation) with MobileNetV3-Large exp3 beside them, then the
#            distillation students KDS towards them; students over SEEDS at EPOCHS,
#            all with augment.views = VIEWS (20) and input size SIZE (112; the teachers see each
#            batch resized to their 112 px), the distillation runs reading the teachers' logits
#            from the teacher cache, every KDS student at once. KDS (default "kd") holds words:
#            kd (0.1 CE + 0.9 Hinton KD, T = 4), dkd<B> (1.0 CE + 1.0 decoupled KD, alpha 1,
#            beta B, T = 4), either with _ls appended (the term reads standardised logits,
#            standardize = true, at T = 2). Call it again (same warm machine) to resume what
#            LIMIT stopped; the teachers' ensemble is scored in OUT/ensemble.md. EXP3=0 leaves
#            exp3 out (phase res with VIEWS trains it in another call), EXP3_SEEDS="2 3" trains
#            it over those seeds only. STUDENT=b0 trains EfficientNet-B0 (phase small's recipe,
#            with zero_init_residual) instead of MobileNetV3-Large, in exp3 and in every KDS term.
#            VARIANTS ("base") trains every KDS term in each recipe variant named (see variant():
#            base, bs128, bs64, strong, d95, sm0, sm05; + combines them, as d95+sm0), their
#            runs' names ending in _bs128, _bs64, _strong, _d95, _sm0, _sm05 (_d95_sm0 combined).
#            CROSSFIT=K (round 20) replaces the six teachers by 2K cross-fitted ones (one of each
#            augmentation per fold, trained without it) that the students read out-of-fold.
#            TEACHER_LS=x (round 21) trains the six teachers with label smoothing x (runs
#            teacher_resnet18_ls0_s0 ... for x = 0; the students' names end in _tls0).
# Round 10 (the input size; the teacher cache's speed):
# cachespeed: one after another, alone on the GPU: two ResNet-18 teachers (3 epochs, only a
#            target to distil from), then 10 epochs of MobileNetV3-Large 0.1 CE + 0.9 KD towards
#            their mean with the teacher in every step and from the teacher cache (augment.views = 10),
#            and exp3 with the same views: wall time and img/s of each (not an accuracy result).
# small:     EfficientNet-B0 (lr 0.05, clipping, WARMUP=5 warm-up epochs; ZI=1: zero-initialised
#            residual blocks) and MobileNetV3-Small,
#            exp3 and 0.1 CE + 0.9 KD towards the mean of TEACHERS (run names under RUNS), over
#            SEEDS at EPOCHS (B0's exp3 over EXP3_SEEDS where given, none with EXP3=0); WHICH="b0 s"
#            picks the students. TRAIN_TEACHERS=1 trains phase cached's three ResNet-18 teachers
#            first (TEACHER_EPOCHS) and makes them the TEACHERS; KD_LS=x gives the KD runs' CE
#            term label smoothing x. Call it again to resume.
# res:       MobileNetV3-Large exp3 at each input size of SIZES ("160 224") over SEEDS at EPOCHS,
#            every run at once; VIEWS=n gives them phase cached's fixed views, VARIANT=w one of
#            its recipe variants (d95: on 95 % of train, as the distillation students). Call it again
#            (same warm machine) to resume what LIMIT stopped.
# Every student trains EPOCHS epochs with a weight EMA (optim.ema_decay = 0.999); the epoch is
# chosen on the validation share of train (data.val_fraction), never on PublicTest, which is
# scored once at the end (test.json). Runs still going at LIMIT seconds are stopped and show as
# unfinished; a later call on the same machine resumes them from their last epoch
# (`fer-train resume`). Writes OUT/<phase>.md (a table) and OUT/<phase>.tgz (every run's directory
# without weights). Resumable: a finished run (outcome.json) is not trained again.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin="${FER_TRAIN:?}"; data="${DATA:?}"; runs="${RUNS:?}"; out="${OUT:?}"; phase="${PHASE:?}"
epochs="${EPOCHS:-60}"; tepochs="${TEACHER_EPOCHS:-80}"; seeds="${SEEDS:-1 2 3}"
limit="${LIMIT:-560}"; ema="${EMA:-0.999}"
mkdir -p "$runs" "$out"
start=$(date +%s)

# shellcheck source=scripts/gpu/mps.sh
source scripts/gpu/mps.sh

t50="$runs/teacher_resnet50/best.safetensors"
t18="$runs/teacher_resnet18/best.safetensors"

launch() { # name config arch seed epochs extra...
  local name="$1" cfg="$2" arch="$3" seed="$4" ep="$5"; shift 5
  [ -f "$runs/$name/outcome.json" ] && return
  local left=$(( limit - ($(date +%s) - start) ))
  [ "$left" -gt 10 ] || { echo "no time left for $name"; return; }
  if [ -f "$runs/$name/state.safetensors" ]; then
    echo "resuming $name"
    timeout "$left" "$bin" -q resume "$runs/$name" >> "$runs/$name.log" 2>&1 &
    return
  fi
  timeout "$left" "$bin" -q run --config "$cfg" --overwrite --set name="$name" \
    --set data.root="$data/fer2013" --set output_dir="$runs" --set model.arch="$arch" \
    --set data.workers=2 --set seed="$seed" --set "stages.0.epochs=$ep" "$@" \
    > "$runs/$name.log" 2>&1 &
}

students() { # prefix config arch seeds extra...
  local prefix="$1" cfg="$2" arch="$3" ss="$4"; shift 4
  for s in $ss; do
    launch "${prefix}_s$s" "$cfg" "$arch" "$s" "$epochs" --set optim.ema_decay="$ema" "$@"
  done
}

ens=(--set "teachers.0.checkpoint=$t50" --set "teachers.1.checkpoint=$t18")

# kd_config NAME RUN...: the round-1 recipe with 0.5 CE + 0.5 KD towards the mean of the teachers
# trained as runs RUN... (directories under RUNS; the loss weights are changed per run with --set).
kd_config() {
  local cfgname="$1" names="" r; shift
  for r in "$@"; do names="$names${names:+, }\"$r\""; done
  sed -n '/^version/,/^warmup_epochs/p' configs/fer2013/exp3_baseline.toml \
    | sed "s/^name = .*/name = \"fer2013_$cfgname\"/; s/^description = .*/description = \"Hinton KD towards the mean of $# teachers.\"/"
  echo; echo '[early_stopping]'; echo 'metric = "val_accuracy"'
  for r in "$@"; do
    printf '\n[[teachers]]\nname = "%s"\ncheckpoint = "%s/%s/best.safetensors"\n' "$r" "$runs" "$r"
  done
  printf '\n[[stages]]\nname = "train"\nepochs = 30\n'
  printf '\n[[stages.loss]]\nkind = "cross_entropy"\nweight = 0.5\nlabel_smoothing = 0.1\n'
  printf '\n[[stages.loss]]\nkind = "kd_ensemble"\nweight = 0.5\ntemperature = 4.0\nteachers = [%s]\n' "$names"
}
# dkd_config NAME BETA RUN...: kd_config with 1.0 CE + 1.0 decoupled KD (alpha 1, BETA, T = 4)
# towards the mean of the teachers instead of its two terms.
dkd_config() {
  local cfgname="$1" beta="$2"; shift 2
  kd_config "$cfgname" "$@" | sed -e '/^\[\[stages.loss\]\]/,$d' \
    -e "s/^description = .*/description = \"Decoupled KD (beta $beta) towards the mean of $# teachers.\"/"
  printf '[[stages.loss]]\nkind = "cross_entropy"\nweight = 1.0\nlabel_smoothing = 0.1\n'
  printf '\n[[stages.loss]]\nkind = "dkd"\nweight = 1.0\ntemperature = 4.0\nalpha = 1.0\nbeta = %s\nteachers = [%s]\n' \
    "$beta" "$(printf '"%s", ' "$@" | sed 's/, $//')"
}
# kd_ensemble_config N [ARCH]: kd_config towards ARCH (resnet18) teachers of seeds 0..N-1.
kd_ensemble_config() {
  local n="$1" arch="${2:-resnet18}"
  # shellcheck disable=SC2046 # one run name per word
  kd_config "kd_ensemble_${arch}x$n" $(for s in $(seq 0 $((n - 1))); do echo "teacher_${arch}_s$s"; done)
}
kd3="$runs/kd_ensemble_resnet18x3.toml"; kd_ensemble_config 3 > "$kd3"
kd5="$runs/kd_ensemble_resnet18x5.toml"; kd_ensemble_config 5 > "$kd5"
kdvgg="$runs/kd_ensemble_vgg_ferx3.toml"; kd_ensemble_config 3 vgg_fer > "$kdvgg"
w09=(--set stages.0.loss.0.weight=0.1 --set stages.0.loss.1.weight=0.9)
b0=(--set optim.lr=0.05 --set optim.grad_clip_norm=5.0)
# Stronger augmentation (round 9; teacher_resnet18_strong.toml's): crops down to half the area,
# ±15°, erasing every other image. For the students' variant `strong`.
strong=(--set 'augment.crop_scale=[0.5, 1.0]' --set augment.rotate_degrees=15.0 --set augment.erase_prob=0.5)
# variant WORDS: the recipe variant WORDS of phase cached's distillation students (VARIANTS) as
# the --set arguments vset and the run-name suffix vsfx; WORDS joined by + combine (d95+sm0).
# base: the recipe as configured; bs128 / bs64: batch 128 at lr 0.05 / batch 64 at lr 0.025 (the
# learning rate scaled with the batch, the EMA decay raised so that its horizon stays about 10
# epochs: 1,000 steps of 256); strong: round 9's stronger augmentation for the student (the
# teachers' cached views follow it); d95: no calibration hold-out (its 5 % of train is trained
# on; calibrate on the validation share, fer-infer calibrate --holdout-part validation); sm0 /
# sm05: label smoothing 0 / 0.05 in the student's cross-entropy (0.1 as configured); fl3: that
# term as focal loss with gamma 3 (Mukhoti et al. 2020; smoothing unchanged). vfilter
# edits the generated config.
variant() {
  vfilter=(cat); vsfx=""; vset=()
  local words w
  IFS=+ read -ra words <<< "$1"
  for w in "${words[@]}"; do
    case "$w" in
      base) ;;
      d95) vsfx+=_d95; vfilter=(sed '/^calib_fraction/d') ;;
      bs128) vsfx+=_bs128; vset+=(--set optim.batch_size=128 --set optim.lr=0.05 --set optim.ema_decay=0.9995) ;;
      bs64) vsfx+=_bs64; vset+=(--set optim.batch_size=64 --set optim.lr=0.025 --set optim.ema_decay=0.99975) ;;
      strong) vsfx+=_strong; vset+=("${strong[@]}") ;;
      sm0) vsfx+=_sm0; vset+=(--set stages.0.loss.0.label_smoothing=0.0) ;;
      sm05) vsfx+=_sm05; vset+=(--set stages.0.loss.0.label_smoothing=0.05) ;;
      fl3) vsfx+=_fl3; vset+=(--set stages.0.loss.0.focal_gamma=3.0) ;;
      *) echo "VARIANTS takes base, bs128, bs64, strong, d95, sm0, sm05 and fl3 (joined by + to combine)"; exit 2 ;;
    esac
  done
}
# TEACHER_LS=x (round 21): the teachers' cross-entropy with label smoothing x instead of the
# configured 0.1; their run names carry _lsX (x without its dot: _ls0, _ls005), the students'
# _tlsX. tls is that suffix, tset its --set argument.
tls=""; tset=()
if [ -n "${TEACHER_LS:-}" ]; then
  tls="_ls${TEACHER_LS//./}"; tset=(--set stages.0.loss.0.label_smoothing="$TEACHER_LS")
fi
# resnet18_teachers SEED...: ResNet-18 teachers teacher_resnet18<tls>_s<seed> with the round-1
# augmentation (TEACHER_EPOCHS, weight EMA), launched in the background.
resnet18_teachers() {
  local t
  for t in "$@"; do
    launch "teacher_resnet18${tls}_s$t" configs/fer2013/teacher_resnet18.toml resnet18 "$t" \
      "$tepochs" --set optim.ema_decay="$ema" "${tset[@]}"
  done
}
# score_ensemble RUN...: the PublicTest and validation-share accuracy and per-class calibration
# (--per-class) of the teachers RUN...
# (directories under RUNS) and of their mean, in OUT/ensemble.md, unless an earlier call of this
# OUT wrote it.
score_ensemble() {
  [ -s "$out/ensemble.md" ] || python3 scripts/gpu/ensemble_eval.py --data "$data/fer2013" \
    --split val --choose-on-val --per-class "${@/#/$runs/}" > "$out/ensemble.md" 2>&1
}
# six_teachers: ResNet-18 teachers of seeds 0-2 (TEACHER_EPOCHS) with the round-1 augmentation
# and with the stronger one (round 9, configs/fer2013/teacher_resnet18_strong.toml), launched in
# the background.
six_teachers() {
  local t
  resnet18_teachers 0 1 2
  for t in 0 1 2; do
    launch "teacher_resnet18strong${tls}_s$t" configs/fer2013/teacher_resnet18_strong.toml \
      resnet18 "$t" "$tepochs" --set optim.ema_decay="$ema" "${tset[@]}"
  done
}
# three_teachers_then_kd ARCH KD_CONFIG KD_RUN: ARCH teachers of seeds 0-2 (TEACHER_EPOCHS) with
# MobileNetV3-Large exp3 over SEEDS beside them; once the teachers are done, their ensemble's
# PublicTest accuracy (OUT/ensemble.md), then MobileNetV3-Large 0.1 CE + 0.9 KD towards the three
# (KD_CONFIG) over SEEDS as KD_RUN_s<seed>.
three_teachers_then_kd() {
  local arch="$1" kdcfg="$2" kdrun="$3" t teacher_jobs
  for t in 0 1 2; do
    launch "teacher_${arch}_s$t" "configs/fer2013/teacher_$arch.toml" "$arch" "$t" "$tepochs" \
      --set optim.ema_decay="$ema"
  done
  teacher_jobs=$(jobs -p)
  students "L_exp3_e$epochs" configs/fer2013/exp3_baseline.toml mobilenet_v3_large "$seeds"
  # shellcheck disable=SC2086 # one pid per word
  [ -z "$teacher_jobs" ] || wait $teacher_jobs
  if [ ! -s "$out/ensemble.md" ]; then
    python3 scripts/gpu/ensemble_eval.py --data "$data/fer2013" --split val \
      "$runs/teacher_${arch}_s"{0,1,2} > "$out/ensemble.md" 2>&1
  fi
  students "$kdrun" "$kdcfg" mobilenet_v3_large "$seeds" "${w09[@]}"
}
case "$phase" in
  teachers)
    for a in resnet50 resnet18; do
      launch "teacher_$a" "configs/fer2013/teacher_$a.toml" "$a" 0 "$tepochs" \
        --set optim.ema_decay="$ema"
    done
    students L_exp3 configs/fer2013/exp3_baseline.toml mobilenet_v3_large "$seeds"
    launch L_exp3_noema_s1 configs/fer2013/exp3_baseline.toml mobilenet_v3_large 1 "$epochs"
    students L_exp3_cutmix configs/fer2013/exp3_baseline.toml mobilenet_v3_large 1 \
      --set augment.cutmix_alpha=1.0 --set augment.mix_prob=0.5
    ;;
  kd)
    students L_exp5ens configs/fer2013/exp5_hybrid_kd_ensemble.toml mobilenet_v3_large "$seeds" "${ens[@]}"
    students L_exp5r50 configs/fer2013/exp5_hybrid_kd.toml mobilenet_v3_large 1 \
      --set "teachers.0.checkpoint=$t50"
    ;;
  extra)
    for a in ${EXTRA_ARCHS:-mobilenet_v3_small efficientnet_b0}; do
      students "${a}_exp3" configs/fer2013/exp3_baseline.toml "$a" "$seeds"
      students "${a}_exp5ens" configs/fer2013/exp5_hybrid_kd_ensemble.toml "$a" "$seeds" "${ens[@]}"
    done
    ;;
  teachers3)
    resnet18_teachers 0 1 2
    launch L_exp3_e100_s1 configs/fer2013/exp3_baseline.toml mobilenet_v3_large 1 100 \
      --set optim.ema_decay="$ema"
    ;;
  kd3)
    students L_kd3 "$kd3" mobilenet_v3_large "$seeds"
    students L_kd3_w09 "$kd3" mobilenet_v3_large 1 "${w09[@]}"
    ;;
  extra3)
    students S_exp3 configs/fer2013/exp3_baseline.toml mobilenet_v3_small "$seeds"
    students S_kd3 "$kd3" mobilenet_v3_small "$seeds"
    students B0_exp3 configs/fer2013/exp3_baseline.toml efficientnet_b0 1 "${b0[@]}"
    students B0_kd3 "$kd3" efficientnet_b0 1 "${b0[@]}"
    ;;
  teachers5)
    resnet18_teachers 0 1 2 3 4
    ;;
  kd5)
    students L_kd5_w09 "$kd5" mobilenet_v3_large "$seeds" "${w09[@]}"
    ;;
  extra5)
    students L_kd5_w09 "$kd5" mobilenet_v3_large "$seeds" "${w09[@]}"
    students B0_exp3 configs/fer2013/exp3_baseline.toml efficientnet_b0 1 "${b0[@]}"
    students B0_kd5_w09 "$kd5" efficientnet_b0 1 "${b0[@]}" "${w09[@]}"
    ;;
  long)
    three_teachers_then_kd resnet18 "$kd3" "L_kd3_w09_e$epochs"
    ;;
  bf16)
    students L_exp3_fp32 configs/fer2013/exp3_baseline.toml mobilenet_v3_large "$seeds"
    students L_exp3_bf16 configs/fer2013/exp3_baseline.toml mobilenet_v3_large "$seeds" \
      --set 'optim.precision="bf16"'
    students B0_exp3 configs/fer2013/exp3_baseline.toml efficientnet_b0 "$seeds" "${b0[@]}"
    (
      rc="$runs/resume_check"
      timeout 90 "$bin" -q run --config configs/fer2013/exp3_baseline.toml --overwrite \
        --set name=resume_check --set data.root="$data/fer2013" --set output_dir="$runs" \
        --set model.arch=mobilenet_v3_small --set stages.0.epochs=40 > "$rc.log" 2>&1
      if [ -f "$rc/outcome.json" ]; then echo "resume check: finished before the kill (inconclusive)"
      elif [ ! -f "$rc/state.safetensors" ]; then echo "resume check: no state after 90 s (inconclusive)"
      else
        before=$(wc -l < "$rc/metrics.jsonl")
        timeout 30 "$bin" -q resume "$rc" >> "$rc.log" 2>&1
        code=$?
        echo "resume check: killed after $before epochs; resume exited $code after $(wc -l < "$rc/metrics.jsonl") epochs (124: stopped by its 30 s limit while training)"
        tail -2 "$rc.log"
      fi
    ) > "$out/resume_check.txt" 2>&1 &
    ;;
  vgg)
    three_teachers_then_kd vgg_fer "$kdvgg" "L_kdvgg_w09_e$epochs"
    ;;
  aug)
    six_teachers
    wait
    {
      echo "ResNet-18, the round-1 augmentation:"
      python3 scripts/gpu/ensemble_eval.py --data "$data/fer2013" --split val --choose-on-val \
        "$runs"/teacher_resnet18_s{0,1,2}
      echo; echo "ResNet-18, stronger augmentation:"
      python3 scripts/gpu/ensemble_eval.py --data "$data/fer2013" --split val --choose-on-val \
        "$runs"/teacher_resnet18strong_s{0,1,2}
      echo; echo "All six:"
      python3 scripts/gpu/ensemble_eval.py --data "$data/fer2013" --split val --choose-on-val \
        "$runs"/teacher_resnet18_s{0,1,2} "$runs"/teacher_resnet18strong_s{0,1,2}
    } > "$out/ensemble.md" 2>&1
    ;;
  cached)
    # TEACHERS6=0: only the three teachers of the round-1 augmentation (half the teacher time).
    # CROSSFIT=K (round 20): 2K cross-fitted teachers instead, one of each augmentation per
    # fold, each trained on 95 % of train without its fold (data.cross_fit_folds = K, no
    # calibration hold-out); the students read them out_of_fold (each image's target is the
    # mean of the two teachers that never trained on it) and carry the suffix _cfK.
    cf="${CROSSFIT:-0}"; cfsfx=""; cfilter=(cat)
    if [ "$cf" -gt 0 ] && [ -n "$tls" ]; then
      echo "CROSSFIT and TEACHER_LS do not combine"; exit 2
    fi
    if [ "$cf" -gt 0 ]; then
      set_=(); cfsfx="_cf$cf"
      cfilter=(sed 's/^\(checkpoint = .*\)$/\1\nout_of_fold = true/')
      for a in resnet18 resnet18_strong; do
        sed '/^calib_fraction/d' "configs/fer2013/teacher_$a.toml" > "$runs/teacher_${a}_cf.toml"
      done
      for k in $(seq 0 $((cf - 1))); do
        for a in resnet18 resnet18strong; do
          launch "teacher_${a}_cf${k}of$cf" "$runs/teacher_${a/strong/_strong}_cf.toml" resnet18 "$k" \
            "$tepochs" --set optim.ema_decay="$ema" --set data.cross_fit_folds="$cf" \
            --set data.cross_fit_fold="$k"
          set_+=("teacher_${a}_cf${k}of$cf")
        done
      done
    elif [ "${TEACHERS6:-1}" = 0 ]; then
      set_=("teacher_resnet18${tls}_s"{0,1,2})
      resnet18_teachers 0 1 2
    else
      set_=("teacher_resnet18${tls}_s"{0,1,2} "teacher_resnet18strong${tls}_s"{0,1,2})
      six_teachers
    fi
    [ -z "$tls" ] || cfsfx+="_t${tls#_}"
    n=${#set_[@]}
    teacher_jobs=$(jobs -p)
    views=(--set augment.views="${VIEWS:-20}" --set model.input_size="${SIZE:-112}")
    tag="v${VIEWS:-20}_e$epochs"
    # STUDENT=b0: EfficientNet-B0 with phase small's recipe (lr 0.05, clipping, WARMUP warm-up
    # epochs, zero_init_residual) instead of MobileNetV3-Large; its runs are named B0zi<size>_...
    case "${STUDENT:-l}" in
      l) sarch=mobilenet_v3_large; sp="L${SIZE:-112}" ;;
      b0) sarch=efficientnet_b0; sp="B0zi${SIZE:-112}"
        views+=("${b0[@]}" --set optim.warmup_epochs="${WARMUP:-5}" --set model.zero_init_residual=true) ;;
      *) echo "STUDENT takes l and b0"; exit 2 ;;
    esac
    # EXP3=0: no exp3 students beside the teachers (their comparison trained in another call);
    # EXP3_SEEDS: exp3 over these seeds instead of SEEDS (those an earlier call did not train).
    [ "${EXP3:-1}" = 0 ] || students "${sp}_exp3_$tag" configs/fer2013/exp3_baseline.toml \
      "$sarch" "${EXP3_SEEDS:-$seeds}" "${views[@]}"
    # shellcheck disable=SC2086 # one pid per word
    [ -z "$teacher_jobs" ] || wait $teacher_jobs
    score_ensemble "${set_[@]}"
    for var in ${VARIANTS:-base}; do
      variant "$var"
      for v in ${KDS:-kd}; do
        lsopt=(); base="${v%_ls}"
        [ "$base" != "$v" ] && lsopt=(--set stages.0.loss.1.standardize=true --set stages.0.loss.1.temperature=2.0)
        cached=("${views[@]}" --set stages.0.teacher_cache=true "${lsopt[@]}" "${vset[@]}")
        case "$base" in
          kd)
            kd_config "kd_$n" "${set_[@]}" | "${vfilter[@]}" | "${cfilter[@]}" \
              > "$runs/kd_$n$vsfx$cfsfx.toml"
            students "${sp}_${v/kd/kd${n}c}_$tag$vsfx$cfsfx" "$runs/kd_$n$vsfx$cfsfx.toml" \
              "$sarch" "$seeds" "${w09[@]}" "${cached[@]}" ;;
          dkd[0-9]*)
            dkd_config "${base}_$n" "${base#dkd}" "${set_[@]}" | "${vfilter[@]}" | "${cfilter[@]}" \
              > "$runs/${base}_$n$vsfx$cfsfx.toml"
            students "${sp}_${v/dkd/dkd${n}c_b}_$tag$vsfx$cfsfx" "$runs/${base}_$n$vsfx$cfsfx.toml" \
              "$sarch" "$seeds" "${cached[@]}" ;;
          *) echo "KDS takes kd, dkd<beta>, each with an optional _ls"; exit 2 ;;
        esac
      done
    done
    ;;
  cachespeed)
    for t in 0 1; do
      launch "speed_teacher_s$t" configs/fer2013/teacher_resnet18.toml resnet18 "$t" 3
    done
    wait
    kd_config kd_speed speed_teacher_s0 speed_teacher_s1 > "$runs/kd_speed.toml"
    launch speed_kd_step "$runs/kd_speed.toml" mobilenet_v3_large 1 10 "${w09[@]}"; wait
    launch speed_kd_cache "$runs/kd_speed.toml" mobilenet_v3_large 1 10 "${w09[@]}" \
      --set augment.views=10 --set stages.0.teacher_cache=true; wait
    launch speed_exp3_views configs/fer2013/exp3_baseline.toml mobilenet_v3_large 1 10 \
      --set augment.views=10; wait
    ;;
  small)
    # The other two students at EPOCHS over SEEDS: exp3 and 0.1 CE + 0.9 KD towards the mean of
    # TEACHERS (run names under RUNS, trained by an earlier phase). EfficientNet-B0 at lr 0.05
    # with clipping and WARMUP (5) warm-up epochs, the measurements' pointers to its seed spread.
    # WHICH picks the students ("b0 s" by default); TEACHERS=none trains exp3 alone.
    # TRAIN_TEACHERS=1: the three ResNet-18 teachers of phase cached (seeds 0-2, TEACHER_EPOCHS)
    # are trained first (a finished one is read back) and scored in OUT/ensemble.md, and they are
    # the TEACHERS. EXP3=0 leaves exp3 out.
    if [ "${TRAIN_TEACHERS:-0}" = 1 ]; then
      TEACHERS="teacher_resnet18_s0 teacher_resnet18_s1 teacher_resnet18_s2"
      resnet18_teachers 0 1 2
      wait
      for t in $TEACHERS; do
        [ -f "$runs/$t/outcome.json" ] || { echo "$t did not finish"; exit 1; }
      done
      # shellcheck disable=SC2086 # one run name per word
      score_ensemble $TEACHERS
    fi
    # shellcheck disable=SC2086 # one run name per word
    kd_config kd_small ${TEACHERS:?TEACHERS=teacher run names} > "$runs/kd_small.toml"
    warm=(--set optim.warmup_epochs="${WARMUP:-5}")
    # ZI=1: B0's residual blocks start as the identity (model.zero_init_residual; names get _zi).
    zi=""; [ -n "${ZI:-}" ] && { zi=_zi; warm+=(--set model.zero_init_residual=true); }
    # KD_LS=x: the KD runs' cross-entropy term with label smoothing x instead of the config's 0.1
    # (names get _ls<x>; round 16: B0's KD students are over-confident below 0.9).
    ls=""; lsk=(); [ -n "${KD_LS:-}" ] && { ls="_ls$KD_LS"; lsk=(--set "stages.0.loss.0.label_smoothing=$KD_LS"); }
    for w in ${WHICH:-b0 s}; do
      case "$w" in
        b0)
          [ "${EXP3:-1}" = 0 ] || students "B0_exp3${zi}_w${WARMUP:-5}_e$epochs" \
            configs/fer2013/exp3_baseline.toml efficientnet_b0 "${EXP3_SEEDS:-$seeds}" "${b0[@]}" "${warm[@]}"
          [ "$TEACHERS" = none ] || students "B0_kd${zi}${ls}_w${WARMUP:-5}_e$epochs" "$runs/kd_small.toml" \
            efficientnet_b0 "$seeds" "${b0[@]}" "${warm[@]}" "${w09[@]}" "${lsk[@]}" ;;
        s)
          [ "${EXP3:-1}" = 0 ] || students "S_exp3_e$epochs" configs/fer2013/exp3_baseline.toml \
            mobilenet_v3_small "$seeds"
          [ "$TEACHERS" = none ] || students "S_kd${ls}_w09_e$epochs" "$runs/kd_small.toml" \
            mobilenet_v3_small "$seeds" "${w09[@]}" "${lsk[@]}" ;;
        *) echo "WHICH takes b0 and s"; exit 2 ;;
      esac
    done
    ;;
  res)
    # VIEWS=n: the fixed augmentation views of phase cached (names get _v<n>). VARIANT: one
    # recipe variant of phase cached (variant(); d95 trains on the distillation students' 95 %).
    vw=(); [ -n "${VIEWS:-}" ] && vw=(--set augment.views="$VIEWS")
    variant "${VARIANT:-base}"
    "${vfilter[@]}" configs/fer2013/exp3_baseline.toml > "$runs/exp3$vsfx.toml"
    for size in ${SIZES:-160 224}; do
      students "L${size}_exp3${VIEWS:+_v$VIEWS}_e$epochs$vsfx" "$runs/exp3$vsfx.toml" \
        mobilenet_v3_large "$seeds" --set model.input_size="$size" "${vw[@]}" "${vset[@]}"
    done
    ;;
  fm)
    # shellcheck disable=SC2086 # one run name per word
    kd_config kd_fm ${TEACHERS:?TEACHERS=teacher run names} > "$runs/kd_fm.toml"
    students "L_kdfm_e$epochs" "$runs/kd_fm.toml" mobilenet_v3_large "$seeds" "${w09[@]}" \
      --set augment.mixup_alpha="${MIXUP:-1.0}"
    [ -z "${NO_PLAIN:-}" ] && students "L_kd_e$epochs" "$runs/kd_fm.toml" mobilenet_v3_large \
      "$seeds" "${w09[@]}"
    ;;
  *) echo "PHASE must be teachers, kd, extra, teachers3, kd3, extra3, teachers5, kd5, extra5, long, bf16, vgg, aug, fm, cached, cachespeed, small or res"; exit 2 ;;
esac
wait
echo "phase $phase: $(( $(date +%s) - start )) s"

python3 - "$runs" > "$out/$phase.md" <<'PY'
import json, os, re, statistics as st, sys
runs = sys.argv[1]
rows = {}
for name in sorted(os.listdir(runs)):
    d = os.path.join(runs, name)
    if not os.path.isdir(d) or name.startswith("."):
        continue
    group = re.sub(r"_s\d+$", "", name)
    try:
        t = json.load(open(os.path.join(d, "test.json")))
        o = json.load(open(os.path.join(d, "outcome.json")))
    except OSError:
        rows.setdefault(group, []).append(None)
        continue
    recs = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl"))]
    steady = [r["img_per_s"] for r in recs[1:]] or [recs[0]["img_per_s"]]
    rows.setdefault(group, []).append(dict(
        best=100 * t["best"]["accuracy"], last=100 * t["last"]["accuracy"],
        f1=100 * t["best"]["macro_f1"], ece=100 * t["best"]["ece"], epoch=t["best"]["epoch"],
        epochs=len(recs), wall=sum(o["seconds"].values()), ips=st.mean(steady)))
def ms(v):
    return f"{st.mean(v):.2f} ± {st.stdev(v):.2f}" if len(v) > 1 else f"{v[0]:.2f}"
print("| run | seeds done | PublicTest acc % (epoch chosen on val) | per seed | last epoch | macro-F1 % | ECE % (T=1) | chosen epoch / epochs | wall s | img/s after epoch 1 |")
print("|---|---:|---:|---|---:|---:|---:|---|---:|---:|")
for g, rs in rows.items():
    done = [r for r in rs if r]
    if not done:
        print(f"| {g} | 0 of {len(rs)} | unfinished | | | | | | | |")
        continue
    c = lambda k: [r[k] for r in done]
    print(f"| {g} | {len(done)} of {len(rs)} | {ms(c('best'))} | {' / '.join(f'{b:.2f}' for b in c('best'))} | "
          f"{ms(c('last'))} | {ms(c('f1'))} | {ms(c('ece'))} | {'/'.join(str(e) for e in c('epoch'))} of {done[0]['epochs']} | "
          f"{st.mean(c('wall')):.0f} | {st.mean(c('ips')):,.0f} |")
PY
cat "$out/$phase.md"
[ -f "$out/resume_check.txt" ] && cat "$out/resume_check.txt"
if [ "$phase" = teachers3 ] || [ "$phase" = teachers5 ]; then
  python3 scripts/gpu/ensemble_eval.py --data "$data/fer2013" --split val \
    "$runs"/teacher_resnet18_s{0,1,2} | tee "$out/ensemble.md"
fi
{ [ "$phase" = long ] || [ "$phase" = vgg ] || [ "$phase" = aug ] || [ "$phase" = cached ] || [ -s "$out/ensemble.md" ]; } && cat "$out/ensemble.md"
if [ "$phase" = teachers5 ]; then
  python3 scripts/gpu/ensemble_eval.py --data "$data/fer2013" --split val \
    "$runs"/teacher_resnet18_s{0,1,2,3,4} | tee -a "$out/ensemble.md"
fi
tar czf "$out/$phase.tgz" -C "$runs" --exclude='*.safetensors' --exclude='*.safetensors.tmp' --exclude=./.cache .
# SHIP="prefix...": for each prefix, of the finished runs named prefix_s<seed>, the one whose
# chosen epoch has the best validation accuracy (validation share of train, never PublicTest)
# comes back as ship_<run>.part-aa, -ab… (split under the 16 MiB a returned file may have; its
# split.json, the calibration hold-out for fer-infer calibrate, is in OUT/<phase>.tgz).
# SHIP_LAST=1: the last epoch's weights (last.safetensors) of the run whose last epoch has the
# best validation accuracy, as ship_<run>.last.part-aa, -ab…
# SHIP_ALL=1: those weights of every finished seed of the prefix, in one tar (run/<w>.safetensors
# inside), as ship_all_<prefix>[.last].tar.part-aa, -ab… (the returned files are at most 8), so
# that every seed can be calibrated and scored on the CPU; the chosen run is still printed.
for prefix in ${SHIP:-}; do
  pick=$(python3 - "$runs" "$prefix" "${SHIP_LAST:-0}" <<'PY'
import json, os, re, sys
runs, prefix, last = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
best = None
for name in os.listdir(runs):
    d = os.path.join(runs, name)
    if not re.fullmatch(re.escape(prefix) + r"_s\d+", name) or not os.path.exists(os.path.join(d, "outcome.json")):
        continue
    recs = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl"))]
    o = json.load(open(os.path.join(d, "outcome.json")))
    v = recs[-1 if last else o["best_epoch"] - 1]["val_accuracy"]
    if best is None or v > best[0]:
        best = (v, name)
print(best[1] if best else "")
PY
)
  if [ -n "$pick" ]; then
    w=best; sfx=""; [ "${SHIP_LAST:-0}" = 1 ] && { w=last; sfx=.last; }
    if [ "${SHIP_ALL:-0}" = 1 ]; then
      done_=(); for r in "$runs/${prefix}"_s*/outcome.json; do done_+=("$(basename "$(dirname "$r")")/$w.safetensors"); done
      tar cf - -C "$runs" "${done_[@]}" | split -b 15M - "$out/ship_all_$prefix$sfx.tar.part-"
      echo "shipping every finished seed of $prefix ($w.safetensors); the chosen one: $pick"
    else
      split -b 15M "$runs/$pick/$w.safetensors" "$out/ship_$pick$sfx.part-"
      echo "shipping $pick ($w.safetensors)"
    fi
  else
    echo "SHIP: no finished run named ${prefix}_s<seed>"
  fi
done
