// Package augment holds the data augmentations of ftune (DataAugmentation).
// Every one is deterministic for a seed (prep.Rand) and keeps an invariant
// its tests check:
//
//   - NEFTune: uniform noise of bound alpha/sqrt(L*d) on input embeddings,
//     training only.
//   - PromptDropout: prompt tokens replaced at random; learnt tokens and
//     protected ids never change.
//   - Rotator: an instruction rewritten with another phrasing of its group;
//     slot values and the response are kept.
//   - Dedup: near-duplicate removal by MinHash LSH on word shingles,
//     confirmed by exact Jaccard similarity.
package augment
